import { loadSileroVad } from '../src/vad/vad.js';
const vad = await loadSileroVad();
const N = Number(process.argv[2] ?? 24);
const lags: number[] = [];
const t0 = performance.now();
await Promise.all(Array.from({ length: N }, async () => {
  const s = vad.openStream();
  for (let k = 0; k < 150; k++) {
    const due = t0 + (k + 1) * 20; const w = due - performance.now(); if (w > 0) await new Promise((r) => setTimeout(r, w));
    const frame = new Float32Array(320).map(() => Math.random() * 0.01);
    await s.push(frame);
    lags.push(performance.now() - due);
  }
}));
lags.sort((a, b) => a - b);
console.log(N, 'streams: lag p50', lags[lags.length >> 1]!.toFixed(1), 'p90', lags[Math.floor(lags.length * 0.9)]!.toFixed(1), 'max', lags.at(-1)!.toFixed(0));
