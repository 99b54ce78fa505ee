/**
 * `npm run bench`: every benchmark, once, on this machine. Prints a table of medians and p99 with
 * each goal, and writes the numbers to .bench/results.json. Goals are reported, never asserted in tests.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { formatTable, meetsGoal, type BenchResult } from './stats.js';
import { benchAudioVad } from './audio-vad-bench.js';
import { benchLatency } from './latency-bench.js';
import { benchLlm } from './llm-bench.js';
import { benchPipeline } from './pipeline-bench.js';
import { benchSession } from './session-bench.js';
import { benchSoak } from './soak-bench.js';
import { benchTts } from './tts-bench.js';
import { benchTurnModel } from './turn-model-bench.js';
import { benchWorker } from './worker-bench.js';

const suites: Record<string, () => Promise<BenchResult[]>> = {
  worker: benchWorker,
  'audio-vad': benchAudioVad,
  turn: benchTurnModel,
  llm: benchLlm,
  tts: benchTts,
  pipeline: benchPipeline,
  session: benchSession,
  latency: benchLatency,
  soak: benchSoak,
};
/** Long runs: only when named (`npm run bench -- soak`). */
const ON_REQUEST = new Set(['soak']);

const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const results: BenchResult[] = [];
for (const [name, suite] of Object.entries(suites)) {
  if (only.length ? !only.includes(name) : ON_REQUEST.has(name)) continue;
  process.stderr.write(`bench: ${name}...\n`);
  results.push(...(await suite()));
}
console.log(`\n${cpus()[0]?.model ?? 'cpu'} x${cpus().length}, node ${process.version}\n`);
console.log(formatTable(results));
await mkdir('.bench', { recursive: true });
await writeFile('.bench/results.json', JSON.stringify({ at: new Date().toISOString(), results }, null, 2));
const missed = results.filter((r) => !meetsGoal(r));
console.log(missed.length ? `\n${missed.length} goal(s) missed` : '\nall goals met');
