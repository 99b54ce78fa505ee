// Bundles the worker into dist/handler.mjs. Native addons and packages that load
// files relative to their own folder stay external and are resolved from node_modules.
import { build } from 'esbuild';
import { chmod, cp, mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';




const started = performance.now();
const result = await build({
  // The worker, the batch client users run against an endpoint, and the model builder (usable inside the image).
  // The turn model's thread is its own file beside them (src/turn/turn-model.ts starts it from there).
  entryPoints: { handler: 'handler/main.ts', 's2s-batch': 'cli/s2s-batch.ts', models: 'builder/models.ts', 'smart-turn-worker': 'src/turn/smart-turn-worker.ts' },
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: 'linked',
  // Native addons (.node files, shared libraries) cannot be bundled.
  // runpod-sdk reads its own package.json relative to its file, so it must load from node_modules too.
  // @huggingface/hub loads its own chunks and WebAssembly at run time.
  external: ['onnxruntime-node', 'sherpa-onnx-node', 'node-llama-cpp', 'runpod-sdk', '@huggingface/hub'],
  // Some bundled CommonJS packages call require(); give the ESM bundle one.
  banner: {
    js: "#!/usr/bin/env node\nimport { createRequire as __s2sCreateRequire } from 'node:module'; const require = __s2sCreateRequire(import.meta.url);",
  },
  logLevel: 'warning',
  // Written below, each file whole at once: a worker starting while `npm run start:test` rebuilds
  // (a test, a second terminal) must never load a half-written bundle.
  write: false,
});
for (const file of result.outputFiles) {
  await mkdir(dirname(file.path), { recursive: true });
  const partial = `${file.path}.${process.pid}.part`;
  await writeFile(partial, file.contents);
  await rename(partial, file.path);
}
await chmod('dist/s2s-batch.mjs', 0o755);
// The browser client is plain modules: copied as they are.
await cp('src/web', 'dist/web', { recursive: true });
console.log(`built dist/handler.mjs, dist/s2s-batch.mjs, dist/models.mjs and dist/smart-turn-worker.mjs in ${Math.round(performance.now() - started)} ms`);
