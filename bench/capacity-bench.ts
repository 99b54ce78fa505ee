/**
 * `npm run bench -- capacity`: N conversations talking at once to one worker on one simulated L4,
 * N = 1, 2, 4, 8, 12, 16. What it prints: first audio p50 / p90 at each N, the largest N with
 * p90 <= 600 ms, and what a conversation-hour then costs at RunPod's L4 price.
 *
 * Real: the worker's whole session path (WebSocket, Silero VAD, endpointer, listener with partial and
 * speculative ASR, preemptive responder, the scheduler and its lanes, clause chunker, pacer), one
 * worker per N with S2S_MAX_CONVERSATIONS = N. CALIBRATED, NOT MEASURED: the ASR, LLM and TTS are the
 * calibrated engine doubles (bench/doubles/), taking the L4 times of l4-calibration.ts, on one
 * simulated GPU per worker where each engine also slows with the work it runs at once
 * (L4_BATCH_SCALING: the TTS engine's measured step ratios, llama.cpp's published batched decode,
 * and an assumption for Whisper, each cited there). The TTS server is taken to batch 16 streams.
 *
 * Each conversation is a client streaming a microphone in 20 ms frames at real time: silence for a
 * random while, then one of the espeak questions, then silence while the answer plays, again and
 * again; the random pauses make turns collide as in real traffic. First audio is measured at the
 * client from the true end of each question's speech. The N values run one after another, each for
 * `--seconds=S` (default 25) on about 16 conversations in all: 16 workers of 1 conversation, 8 of 2,
 * 4 of 4, 2 of 8, 1 of 12 or 16 (each worker its own simulated GPU), so every N gets a similar
 * number of turns and this process a similar load. `--n=1,4,8` picks N values. Preemption backs off
 * under load (scheduler.ts); N = 8 and 12 also run without the back-off, so its effect is measured
 * in the same run (`--no-compare` leaves them out). Session errors are counted and printed.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import WebSocket from 'ws';
import { readPipelineConfig, schedulerOptions } from '../handler/pipeline-config.js';
import { float32ToPcm16 } from '../src/audio/pcm.js';
import type { Engines } from '../src/pipeline/engines.js';
import { loadSileroVad, type Vad } from '../src/vad/vad.js';
import { speak } from '../test/fixtures/speech.js';
import { serveCalibratedWorker } from './calibrated-worker.js';
import { CalibratedAsrDouble, CalibratedLlmDouble, CalibratedTtsDouble, SimulatedGpu, TranscriptOracle, type ScriptedClip } from './doubles/calibrated-engines-double.js';
import { L4_BATCH_SCALING, l4BatchScaling, modelTimes } from './doubles/l4-calibration.js';
import { ANSWER, QUESTIONS } from './latency-bench.js';
import { quantile, summarize, type BenchResult } from './stats.js';

const RATE = 16_000;
const FRAME_MS = 20;
const TOKEN = 'bench-capacity-token-0123456789';
/** RunPod Serverless flex price of an L4 (docs.runpod.io/serverless/pricing: L4, A5000, 3090, 24 GB, $0.00019/s). */
const L4_FLEX_USD_PER_S = 0.00019;
const GOAL_P90_MS = 600;
/** Streams the TTS engine batches (its issue sizes S2S_TTS_MAX_STREAMS for an L4; TTS-ENGINE.md measures up to 16). */
const TTS_STREAMS = 16;
const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const SECONDS = Number(arg('seconds') ?? 25);
/** Conversations per N in all (over one or more workers). */
const CONVERSATIONS_PER_PHASE = 16;
const NS = (arg('n') ?? '1,2,4,8,12,16').split(',').map(Number);
const COMPARE = !process.argv.includes('--no-compare');

interface Variant {
  n: number;
  backoff: boolean;
}

interface Turn {
  firstAudioMs: number;
  waits: { asr: number; llm: number; tts: number };
  preemptive: boolean | 'discarded';
}

/** The turn's metrics event, as far as this benchmark reads it. */
type TurnEnd = { asr_wait_ms: number; llm_wait_ms: number; tts_wait_ms: number; preemptive: boolean | 'discarded' };

interface VariantResult extends Variant {
  turns: Turn[];
  /** Questions that got no answer before the next one (or the end). */
  unanswered: number;
  preemptionsDeclined: number;
  workers: number;
  /** Session `error` events by code (a session that ends early shows here). */
  errors: Record<string, number>;
}

/** A small seeded PRNG (mulberry32), so runs are comparable. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

async function startWorker(vad: Vad, oracle: TranscriptOracle, variant: Variant) {
  const base = readPipelineConfig({ S2S_PROFILE: 'test', S2S_MODELS_DIR: '.bench/unused-models', S2S_PREEMPTION: 'full' });
  const scheduler = schedulerOptions(variant.n, TTS_STREAMS);
  const config = {
    ...base,
    capacity: { maxConversations: variant.n, scheduler: { ...scheduler, preemptionBackoff: variant.backoff } },
  };
  const gpu = new SimulatedGpu(modelTimes('central'), l4BatchScaling());
  const engines: Engines = {
    vad,
    asr: new CalibratedAsrDouble(gpu, oracle),
    llm: new CalibratedLlmDouble(gpu, () => ANSWER),
    tts: new CalibratedTtsDouble(gpu),
    dispose: async () => undefined,
  };
  const worker = await serveCalibratedWorker(engines, config, TOKEN);
  return { url: worker.url, scheduler: worker.handler.engines.scheduler!, close: () => worker.close() };
}

/**
 * One conversation: a microphone streaming in real time, question after question with random
 * pauses, until `deadline`; each answer is listened to until its metrics arrive.
 */
async function converse(url: string, questions: ScriptedClip[], seed: number, deadline: number, result: VariantResult): Promise<void> {
  const rand = random(seed);
  const ws = new WebSocket(url, { perMessageDeflate: false });
  let speechEndAt: number | null = null;
  let firstAudioAt: number | null = null;
  let metrics: TurnEnd | null = null;
  await new Promise<void>((resolve, reject) => {
    ws.once('error', reject);
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        if (speechEndAt !== null && firstAudioAt === null) firstAudioAt = performance.now();
        return;
      }
      const event = JSON.parse(data.toString()) as { type: string; code?: string } & TurnEnd;
      if (event.type === 'ready') resolve();
      if (event.type === 'error') result.errors[event.code ?? '?'] = (result.errors[event.code ?? '?'] ?? 0) + 1;
      if (event.type === 'metrics' && speechEndAt !== null) metrics = event;
    });
  });
  const silenceFrame = new Int16Array((FRAME_MS * RATE) / 1000);
  let sent = 0;
  const t0 = performance.now();
  /** Sends `pcm` in real time (each frame when its last sample would have been captured). */
  const stream = async (pcm: Int16Array, onFrame?: (end: number) => void) => {
    const frame = silenceFrame.length;
    for (let at = 0; at < pcm.length && ws.readyState === ws.OPEN; at += frame) {
      const chunk = pcm.subarray(at, at + frame);
      const due = t0 + ((sent + chunk.length) / RATE) * 1000;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      ws.send(chunk);
      sent += chunk.length;
      onFrame?.(at + chunk.length);
    }
  };
  const silence = async (ms: number) => {
    for (let left = ms; left > 0 && ws.readyState === ws.OPEN; left -= FRAME_MS) await stream(silenceFrame);
  };
  // A first pause of 0-4 s spreads the conversations' first questions.
  await silence(rand() * 4_000);
  while (performance.now() < deadline && ws.readyState === ws.OPEN) {
    const clip = questions[Math.floor(rand() * questions.length)]!;
    const pcm = float32ToPcm16(clip.samples);
    const speechEnd = clip.parts.at(-1)!.endSample;
    speechEndAt = null;
    firstAudioAt = null;
    metrics = null;
    await stream(pcm, (end) => {
      // The frame holding the last speech sample: captured (end - speechEnd) samples before it was sent.
      if (speechEndAt === null && end >= speechEnd) speechEndAt = performance.now() - ((end - speechEnd) / RATE) * 1000;
    });
    // Listen (sending silence, as a microphone does) until the answer is done, 20 s at most.
    const waitUntil = performance.now() + 20_000;
    while (metrics === null && performance.now() < waitUntil && ws.readyState === ws.OPEN) await silence(100);
    // Set by the message handler meanwhile (TypeScript cannot see it).
    const done = metrics as TurnEnd | null;
    if (firstAudioAt !== null && speechEndAt !== null && done !== null) {
      result.turns.push({
        firstAudioMs: firstAudioAt - speechEndAt,
        waits: { asr: done.asr_wait_ms, llm: done.llm_wait_ms, tts: done.tts_wait_ms },
        preemptive: done.preemptive,
      });
    } else {
      result.unanswered++;
    }
    // The user thinks for a while before the next question.
    await silence(400 + rand() * 2_600);
  }
  ws.close();
}

const fmt = (v: number) => (Number.isFinite(v) ? String(Math.round(v)) : '-');
const p = (values: number[], q: number) => quantile([...values].sort((a, b) => a - b), q);

export async function benchCapacity(): Promise<BenchResult[]> {
  const started = performance.now();
  const vad = await loadSileroVad();
  const oracle = new TranscriptOracle();
  const questions = await Promise.all(QUESTIONS.map(async (text) => oracle.register([{ samples: await speak(text), text }])));
  const variants: Variant[] = [...NS.map((n) => ({ n, backoff: true })), ...(COMPARE ? [8, 12].filter((n) => NS.includes(n)).map((n) => ({ n, backoff: false })) : [])];
  const results: VariantResult[] = [];
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  try {
    for (const variant of variants) {
      const copies = Math.max(1, Math.round(CONVERSATIONS_PER_PHASE / variant.n));
      const result: VariantResult = { ...variant, turns: [], unanswered: 0, preemptionsDeclined: 0, workers: copies, errors: {} };
      results.push(result);
      process.stderr.write(`capacity: N = ${variant.n}${variant.backoff ? '' : ' without back-off'}, ${copies} worker(s), ${SECONDS} s\n`);
      const workers = await Promise.all(Array.from({ length: copies }, () => startWorker(vad, oracle, variant)));
      const deadline = performance.now() + SECONDS * 1000;
      try {
        await Promise.all(
          workers.flatMap((worker, w) =>
            Array.from({ length: variant.n }, (_, c) => converse(worker.url, questions, 10_000 * variant.n + 100 * w + c + (variant.backoff ? 0 : 5_000), deadline, result)),
          ),
        );
        result.preemptionsDeclined = workers.reduce((n, w) => n + w.scheduler.preemptionsDeclined, 0);
      } finally {
        await Promise.all(workers.map((w) => w.close()));
      }
    }
  } finally {
    loop.disable();
    await vad.dispose();
  }

  const lines = [
    '| N | back-off | workers | turns | first audio p50 / p90 ms | ASR / LLM / TTS wait p90 ms | preemptive answers played / thrown away / not started (back-off) | unanswered | session errors |',
    '|---|---|---|---|---|---|---|---|---|',
    ...results.map((r) => {
      const first = r.turns.map((t) => t.firstAudioMs);
      const played = r.turns.filter((t) => t.preemptive === true).length;
      const thrown = r.turns.filter((t) => t.preemptive === 'discarded').length;
      const errors = Object.entries(r.errors).map(([code, n]) => `${code} ${n}`).join(', ') || '-';
      return `| ${r.n} | ${r.backoff ? 'on' : 'off'} | ${r.workers} | ${r.turns.length} | ${fmt(p(first, 0.5))} / ${fmt(p(first, 0.9))} | ${fmt(p(r.turns.map((t) => t.waits.asr), 0.9))} / ${fmt(p(r.turns.map((t) => t.waits.llm), 0.9))} / ${fmt(p(r.turns.map((t) => t.waits.tts), 0.9))} | ${played} / ${thrown} / ${r.preemptionsDeclined} | ${r.unanswered} | ${errors} |`;
    }),
  ];
  const withBackoff = results.filter((r) => r.backoff);
  const fitting = withBackoff.filter((r) => r.turns.length > 0 && p(r.turns.map((t) => t.firstAudioMs), 0.9) <= GOAL_P90_MS);
  const best = fitting.length ? Math.max(...fitting.map((r) => r.n)) : 0;
  const hourUsd = L4_FLEX_USD_PER_S * 3_600;
  console.log(`\nCapacity: N conversations at once on one worker and one simulated L4 (${SECONDS} s per N over about ${CONVERSATIONS_PER_PHASE} conversations; calibrated engine doubles with batch scaling; TTS batching ${TTS_STREAMS} streams):\n`);
  console.log(lines.join('\n'));
  console.log(
    best > 0
      ? `\nlargest N with first audio p90 <= ${GOAL_P90_MS} ms: ${best}; an L4 at RunPod's flex price ($${L4_FLEX_USD_PER_S}/s, $${hourUsd.toFixed(2)}/h) then costs $${(hourUsd / best).toFixed(3)} per conversation-hour (against $${hourUsd.toFixed(2)} with one conversation per worker)`
      : `\nno N met first audio p90 <= ${GOAL_P90_MS} ms`,
  );
  console.log(
    `batch scaling (per-step time vs one stream): TTS ${JSON.stringify(L4_BATCH_SCALING.tts.ratios)}, LLM ${JSON.stringify(L4_BATCH_SCALING.llm.ratios)}, ASR ${JSON.stringify(L4_BATCH_SCALING.asr.ratios)} (assumed); sources in bench/doubles/l4-calibration.ts`,
  );
  console.log(`wall time ${Math.round((performance.now() - started) / 1000)} s; event-loop delay p50 ${(loop.percentile(50) / 1e6).toFixed(1)} ms, p99 ${(loop.percentile(99) / 1e6).toFixed(1)} ms, max ${(loop.max / 1e6).toFixed(0)} ms`);
  return withBackoff.map((r) =>
    summarize(`capacity L4: ${r.n} conversation${r.n > 1 ? 's' : ''} at once, first audio`, 'ms', r.turns.map((t) => t.firstAudioMs), r.n === 8 ? { p90: GOAL_P90_MS } : undefined, 'calibrated'),
  );
}
