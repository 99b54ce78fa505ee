// Bundles the worker into dist/handler.mjs. Native addons and packages that load
// files relative to their own folder stay external and are resolved from node_modules.
import { build } from 'esbuild';




const started = performance.now();
await build({
  entryPoints: ['handler/main.ts'],
  outfile: 'dist/handler.mjs',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: 'linked',
  // Native addons (.node files, shared libraries) cannot be bundled.
  external: ['onnxruntime-node', 'sherpa-onnx-node', 'node-llama-cpp'],
  // Some bundled CommonJS packages call require(); give the ESM bundle one.
  banner: {
    js: "import { createRequire as __s2sCreateRequire } from 'node:module'; const require = __s2sCreateRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
console.log(`built dist/handler.mjs in ${Math.round(performance.now() - started)} ms`);
