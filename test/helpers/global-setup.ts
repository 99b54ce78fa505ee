/** Builds dist/handler.mjs once, so tests that run the bundled worker test what ships. */
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  execFileSync(process.execPath, ['builder/build.mjs'], { stdio: 'inherit' });
}
