/**
 * The Dockerfile cannot be built here (no Docker engine), so its promises are checked statically:
 * every file it copies exists, every version is pinned (and agrees with package.json), the TTS port
 * is never exposed, it runs as a non-root user and starts the bundled worker.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';

const dockerfile = await readFile('Dockerfile', 'utf8');
const pkg = JSON.parse(await readFile('package.json', 'utf8')) as { dependencies: Record<string, string>; scripts: Record<string, string> };
// Join continuation lines and drop comments.
const instructions = dockerfile
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));
const args = new Map(instructions.filter((l) => l.startsWith('ARG ')).map((l) => l.slice(4).split('=') as [string, string]));

describe('Dockerfile', () => {
  it('copies only files that exist in the repository', () => {
    const copies = instructions.filter((l) => l.startsWith('COPY ') && !l.includes('--from='));
    expect(copies.length).toBeGreaterThan(0);
    for (const copy of copies) {
      const sources = copy.slice(5).split(/\s+/).slice(0, -1);
      for (const source of sources) expect(existsSync(source), `${copy}: ${source}`).toBe(true);
    }
  });

  it('pins every version', () => {
    for (const [name, value] of args) expect(value, `ARG ${name}`).toMatch(/\S/);
    for (const from of instructions.filter((l) => l.startsWith('FROM '))) {
      const image = from.split(/\s+/)[1]!;
      const resolved = image.replace(/\$\{(\w+)\}/g, (_, name: string) => args.get(name) ?? '');
      if (args.has(image.replace(/^\$\{|\}$/g, '')) || /:\S+/.test(resolved)) expect(resolved).toMatch(/:[\w.-]+/);
      expect(resolved).not.toMatch(/:latest$/);
    }
    expect(args.get('VIBEVOICE_COMMIT')).toMatch(/^[0-9a-f]{40}$/);
    expect(args.get('TORCH_VERSION')).toMatch(/^\d+\.\d+\.\d+$/);
    expect(dockerfile).toContain('torch==${TORCH_VERSION}');
    // sherpa-onnx's GPU libraries must be of the same release as the npm package.
    expect(args.get('SHERPA_ONNX_VERSION')).toBe(pkg.dependencies['sherpa-onnx-node']);
    expect(args.get('NODE_VERSION')).toMatch(/^20\.\d+\.\d+$/);
    // Exact versions in package.json, and npm ci (the lock file) in the image.
    for (const [name, version] of Object.entries(pkg.dependencies)) expect(version, name).toMatch(/^\d+\.\d+\.\d+$/);
    expect(dockerfile).toMatch(/RUN npm ci\b/);
  });

  it('never downloads onnxruntime CUDA libraries, and bundles the worker', () => {
    expect(dockerfile).toMatch(/ENV ONNXRUNTIME_NODE_INSTALL=skip/);
    expect(dockerfile).toMatch(/RUN npm run build/);
    expect(pkg.scripts['build']).toBe('node builder/build.mjs');
  });

  it('runs the bundled worker as a non-root user and never exposes the TTS port', () => {
    expect(instructions.at(-1)).toBe('CMD ["node", "dist/handler.mjs"]');
    const users = instructions.filter((l) => l.startsWith('USER '));
    expect(users.at(-1)).not.toMatch(/USER\s+(root|0)$/);
    const exposed = instructions.filter((l) => l.startsWith('EXPOSE ')).flatMap((l) => l.slice(7).split(/\s+/));
    expect(exposed).not.toContain('8000');
    expect(exposed).toContain('8005');
  });

  it('swaps sherpa-onnx GPU libraries into its npm package and checks the CUDA provider is there', () => {
    expect(dockerfile).toContain('node_modules/sherpa-onnx-linux-x64/');
    expect(dockerfile).toContain('test -f node_modules/sherpa-onnx-linux-x64/libonnxruntime_providers_cuda.so');
  });
});
