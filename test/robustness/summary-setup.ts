/**
 * Vitest global setup of the robustness suites: gives every test file a folder for its counts
 * (`inject('robustnessDir')`) and prints the one summary when the run ends.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { formatSummary, readReports, robustnessSeed } from './tally.js';

declare module 'vitest' {
  export interface ProvidedContext {
    robustnessDir: string;
  }
}

export default function setup(project: TestProject): () => void {
  const dir = mkdtempSync(join(tmpdir(), 's2s-robustness-'));
  project.provide('robustnessDir', dir);
  return () => {
    const reports = readReports(dir);
    if (reports.length > 0) process.stdout.write(`\n${formatSummary('robustness summary, short form (npm test)', reports, robustnessSeed())}\n`);
    rmSync(dir, { recursive: true, force: true });
  };
}
