/**
 * `npm run bench -- latency`: first audio on a calibrated L4, ours against the peers' turn-taking
 * policies, all configured in our pipeline.
 *
 * Real: Silero VAD, the endpointer (adaptive or fixed), the listener with speculative ASR, the
 * preemptive responder, the answer's text streamed into the TTS, the output pacer, the live session and its WebSocket,
 * and espeak-ng questions streamed at real time in 20 ms or 320 ms frames. CALIBRATED, NOT MEASURED:
 * the ASR, LLM and TTS are doubles (bench/doubles/) that take the time bench/doubles/l4-calibration.ts
 * gives for an L4, sharing one simulated GPU. Reported from the true end of speech (known from how the
 * audio was made) to the first answer audio frame at the client. The false-endpoint rate is measured
 * on a set of sentences with 300-700 ms pauses inside them.
 *
 * Each policy and frame size runs against its own worker (own simulated GPU), all concurrently,
 * sessions one after another within each: one session per question, closed at the first answer audio.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import WebSocket from 'ws';
import { readPipelineConfig } from '../handler/pipeline-config.js';
import { float32ToPcm16 } from '../src/audio/pcm.js';
import type { Engines } from '../src/pipeline/engines.js';
import type { PreemptionMode } from '../src/pipeline/preemptive.js';
import { SMART_TURN_V3_2 } from '../src/models/registry.js';
import type { EndpointerOptions } from '../src/vad/endpointer.js';
import { DEFAULT_VAD_CONFIG, loadSileroVad, type Vad } from '../src/vad/vad.js';
import { speak } from '../test/fixtures/speech.js';
import { realSmartTurn } from '../test/helpers/smart-turn-wheel.js';
import { serveCalibratedWorker } from './calibrated-worker.js';
import { CalibratedAsrDouble, CalibratedLlmDouble, CalibratedTtsDouble, SimulatedGpu, TranscriptOracle, type ScriptedClip } from './doubles/calibrated-engines-double.js';
import { modelTimes } from './doubles/l4-calibration.js';
import { quantile, summarize, type BenchResult } from './stats.js';

export interface Policy {
  key: string;
  name: string;
  vad: Partial<EndpointerOptions>;
  preemption: PreemptionMode;
  source: string;
}

export const POLICIES: Policy[] = [
  { key: 'a', name: 'ours (preemptive + adaptive endpoint)', vad: { turnModel: false }, preemption: 'full', source: 'this worker: endpoint 200 / 400 / 900 ms by transcript cue' },
  { key: 'b', name: 'ours without preemption', vad: { turnModel: false }, preemption: 'off', source: 'as (a), S2S_PREEMPTION=off' },
  {
    key: 'c',
    name: 'LiveKit Agents defaults',
    // Silero min silence 550 ms, then min endpointing delay 500 ms; the LLM (not the TTS) starts on the transcript.
    vad: { adaptive: false, endpointMs: 1_050, speculateAfterMs: 550 },
    preemption: 'llm',
    source: 'livekit/agents voice/turn.py, silero plugin vad.py',
  },
  {
    key: 'd',
    name: 'huggingface/speech-to-speech defaults',
    // Read at its main 9f59bc72 (2026-08-21), src/speech_to_speech/: Silero onset 0.6, offset 0.45,
    // min speech 384 ms, 500 ms pre-roll; the soft endpoint after 64 ms of quiet fires on the third
    // quiet 32 ms chunk (96 ms), and only then does STT run on the whole turn (progressive partials
    // are display-only). The LLM starts on that transcript, but every output stage (LLM flush, TTS,
    // response) waits out the 800 ms `speculative_reopen_ms` grace after the endpoint, and speech
    // within it reopens the turn: in our pipeline, ASR and LLM at 96 ms of silence, the turn (and
    // TTS) at 96 + 800 ms. Not modelled, each in its favour: Smart Turn's CPU inference before the
    // grace (~12 ms), its "incomplete" verdict (STT 600 ms later, output held 2 s) and its batching
    // of three sentences before TTS.
    vad: { adaptive: false, activationThreshold: 0.6, releaseThreshold: 0.45, minSpeechMs: 384, preRollMs: 500, speculateAfterMs: 96, endpointMs: 896 },
    preemption: 'llm',
    source: 'huggingface/speech-to-speech 9f59bc72: arguments_classes/vad_arguments.py, VAD/vad_iterator.py, VAD/vad_handler.py, pipeline/speculative_turns.py',
  },
  { key: 'e', name: 'OpenAI Realtime server_vad defaults', vad: { adaptive: false, endpointMs: 500, preRollMs: 300 }, preemption: 'off', source: 'API reference: silence 500 ms, prefix 300 ms, threshold 0.5' },
  { key: 'f', name: 'fixed 250 ms endpoint (the previous default)', vad: { adaptive: false, endpointMs: 250 }, preemption: 'off', source: 'this worker before adaptive endpointing' },
  {
    key: 'g',
    name: 'ours + Smart Turn v3.2 (the default now)',
    // The real model in its worker thread on this machine's CPU, shared by every session of the run:
    // a verdict slower than the endpoint leaves the transcript cue to decide, as in production.
    vad: { turnModel: true },
    preemption: 'full',
    source: 'this worker: the cue range moved by the model (complete 200 ms, incomplete up to 1500 ms, re-checked every 100 ms)',
  },
];

export const QUESTIONS = [
  'What is the capital of France?',
  'Can you tell me a joke?',
  'How far away is the moon?',
  'What time does the library open on Sundays?',
  'Please set a timer for ten minutes.',
  'Why is the sky blue?',
  'Who wrote the novel Pride and Prejudice?',
  'What should I cook for dinner tonight?',
  'Tell me something interesting about octopuses.',
  'How do I say thank you in Japanese?',
];

/** Sentences with a pause inside (ms): most after a connector, filler, article or comma, three after a content word. */
const PAUSED_SENTENCES: [string, number, string][] = [
  ['I would like to book a table,', 400, 'for two people tonight.'],
  ['Can you remind me to call my mother and', 500, 'buy some milk?'],
  ['I was thinking that maybe we could go to the', 600, 'beach tomorrow.'],
  ['So', 350, 'what is the weather like today?'],
  ['Um', 450, 'can you play some music?'],
  ['Tell me about the history of', 550, 'ancient Rome.'],
  ['I need to buy a new phone but', 700, 'I do not know which one.'],
  ['What is the best way to get to', 300, 'the airport?'],
  ['My favourite colour is', 650, 'green.'],
  ['Set an alarm for seven', 400, 'in the morning.'],
  ['I want to learn how to play the guitar', 500, 'this summer.'],
  ['Could you explain how photosynthesis works', 600, 'in simple words?'],
];

/** Every question gets the same spoken answer; its first clause is 8 words (LATENCY.md's 8-token first clause). */
export const ANSWER = 'Sure, let me think about that for you. Here is what I found.';

const RATE = 16_000;
const TOKEN = 'bench-latency-token-0123456789';
const LEAD_MS = 200;
const TURNS = Number(process.argv.find((a) => a.startsWith("--turns="))?.slice(8) ?? 40);

const DEBUG = process.argv.includes('--debug');
const silence = (ms: number) => new Float32Array(Math.round((ms * RATE) / 1000));

/** The real Silero VAD with a policy's endpointing as its defaults. */
function policyVad(vad: Vad, policy: Policy): Vad {
  return { openStream: (overrides = {}) => vad.openStream({ ...policy.vad, ...overrides }), dispose: async () => undefined };
}

interface Worker {
  url: string;
  asr: CalibratedAsrDouble;
  close(): Promise<void>;
}

/** The test profile's worker settings (no model files are read: the engines are doubles). */
const BASE_CONFIG = readPipelineConfig({ S2S_PROFILE: 'test', S2S_MODELS_DIR: '.bench/unused-models' });

async function startWorker(vad: Vad, oracle: TranscriptOracle, policy: Policy, times: 'central' | 'high', partials: boolean): Promise<Worker> {
  const base = BASE_CONFIG;
  const sessions = partials ? base.sessions : { ...base.sessions, partialTranscriptMs: 0 };
  const config = { ...base, sessions, jobs: { ...base.jobs, preemption: policy.preemption } };
  const gpu = new SimulatedGpu(modelTimes(times));
  const asr = new CalibratedAsrDouble(gpu, oracle);
  const engines: Engines = {
    vad: policyVad(vad, policy),
    asr,
    llm: new CalibratedLlmDouble(gpu, () => ANSWER),
    tts: new CalibratedTtsDouble(gpu),
    dispose: async () => undefined,
  };
  const worker = await serveCalibratedWorker(engines, config, TOKEN);
  return { url: worker.url, asr, close: () => worker.close() };
}

interface SessionRun {
  /** True end of speech (capture at the client) to the first answer audio at the client; null if none came. */
  firstAudioMs: number | null;
  /** End of each turn the server closed (speech_end end_ms, stream audio time). */
  turnEndsMs: number[];
  /** Answer audio came before the user had finished (a turn closed mid-question was answered). */
  early: boolean;
  /** Each answered turn's metrics: what decided its endpoint, and the turn model's verdict. */
  decisions: { by: string; verdict: string | null }[];
}

/**
 * One session: `LEAD_MS` of silence, the clip, then silence, sent at real time in `frameMs` frames
 * (each frame sent when its last sample would have been captured). Ends at the first answer audio
 * (plus `afterMs`) or when the stream runs out.
 */
async function runSession(url: string, clip: ScriptedClip, frameMs: number, tailMs: number, stopAtAudio: boolean): Promise<SessionRun> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  let t0 = performance.now();
  const turnEndsMs: number[] = [];
  const decisions: SessionRun['decisions'] = [];
  let firstAudioAt: number | null = null;
  await new Promise<void>((resolve, reject) => {
    ws.once('error', reject);
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        if (DEBUG && firstAudioAt === null) process.stderr.write(`${url.slice(-40, -30)} ${Math.round(performance.now() - t0)} first audio\n`);
        firstAudioAt ??= performance.now();
        return;
      }
      const event = JSON.parse(data.toString()) as { type: string; end_ms?: number; endpoint_decided_by?: string; turn_verdict?: string | null };
      if (DEBUG && event.type !== 'text') process.stderr.write(`${url.slice(-40, -30)} ${Math.round(performance.now() - t0)} ${data.toString().slice(0, 120)}\n`);
      if (event.type === 'ready') resolve();
      if (event.type === 'speech_end') turnEndsMs.push(event.end_ms!);
      if (event.type === 'metrics') decisions.push({ by: event.endpoint_decided_by ?? '?', verdict: event.turn_verdict ?? null });
    });
  });
  const lead = Math.round((LEAD_MS * RATE) / 1000);
  const stream = new Float32Array(lead + clip.samples.length + silence(tailMs).length);
  stream.set(clip.samples, lead);
  const pcm = float32ToPcm16(stream);
  const frame = Math.round((frameMs * RATE) / 1000);
  const trueEnd = lead + clip.parts.at(-1)!.endSample;
  let speechEndCapturedAt: number | null = null;
  t0 = performance.now();
  if (DEBUG) process.stderr.write(`${url.slice(-40, -30)} stream starts; speech ends at ${Math.round((trueEnd / RATE) * 1000)}\n`);
  for (let at = 0; at < pcm.length; at += frame) {
    const end = Math.min(at + frame, pcm.length);
    const due = t0 + (end / RATE) * 1000;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    if (stopAtAudio && firstAudioAt !== null) break;
    if (ws.readyState !== ws.OPEN) break;
    ws.send(pcm.subarray(at, end));
    // The frame holding the last speech sample: captured (end - trueEnd) samples before it was sent.
    if (speechEndCapturedAt === null && end >= trueEnd) speechEndCapturedAt = performance.now() - ((end - trueEnd) / RATE) * 1000;
  }
  ws.close();
  const firstAudio: number | null = firstAudioAt;
  return { firstAudioMs: firstAudio !== null && speechEndCapturedAt !== null ? firstAudio - speechEndCapturedAt : null, turnEndsMs, early: firstAudio !== null && speechEndCapturedAt === null, decisions };
}

interface Config {
  policy: Policy;
  frameMs: number;
  times: 'central' | 'high';
  /** Latency turns, or the mid-sentence pause set (false endpoints). */
  set: 'questions' | 'pauses';
  /** Partial transcripts while the user speaks (the default); off only to measure what they cost. */
  partials?: boolean;
}

interface ConfigResult extends Config {
  values: number[];
  /** Questions answered before they were finished (cut off), and questions with no answer at all. */
  early: number;
  missing: number;
  /** Pause set: sentences cut by a turn closing inside them. */
  cut: number;
  of: number;
  /** ASR decodes and their calibrated time per session (one question: one turn). */
  asrDecodesPerTurn: number;
  asrMsPerTurn: number;
  /** Pause set: answered turns' endpoint deciders ("model complete", "transcript", ...), counted. */
  decided: Map<string, number>;
  /** Pause set: the sentences cut. */
  cutTexts: string[];
}

/**
 * Runs every config's sessions with at most `concurrency` sessions at once, never two of one
 * config at once (each config is one worker with one simulated GPU).
 */
async function runAll(vad: Vad, oracle: TranscriptOracle, questions: ScriptedClip[], pauses: ScriptedClip[], configs: Config[], concurrency: number): Promise<ConfigResult[]> {
  const results = configs.map((config) => ({ ...config, values: [] as number[], early: 0, missing: 0, cut: 0, of: 0, asrDecodesPerTurn: 0, asrMsPerTurn: 0, decided: new Map<string, number>(), cutTexts: [] as string[] }));
  const workers = await Promise.all(configs.map((c) => startWorker(vad, oracle, c.policy, c.times, c.partials !== false)));
  const queues = results.map((r) => (r.set === 'questions' ? Array.from({ length: TURNS }, (_, i) => questions[i % questions.length]!) : [...pauses]));
  const busy = new Set<number>();
  const lastPartStartMs = (clip: ScriptedClip) => ((Math.round((LEAD_MS * RATE) / 1000) + clip.parts.at(-1)!.startSample) / RATE) * 1000;
  const next = (): number => {
    // The config with the most sessions left that is not running one.
    let best = -1;
    for (let i = 0; i < queues.length; i++) if (!busy.has(i) && queues[i]!.length > 0 && (best < 0 || queues[i]!.length > queues[best]!.length)) best = i;
    return best;
  };
  const lane = async () => {
    for (let i = next(); i >= 0; i = next()) {
      busy.add(i);
      const clip = queues[i]!.shift()!;
      const r = results[i]!;
      if (r.set === 'questions') {
        const run = await runSession(workers[i]!.url, clip, r.frameMs, 3_000, true);
        if (run.early) r.early++;
        else if (run.firstAudioMs === null) r.missing++;
        else r.values.push(run.firstAudioMs);
      } else {
        const run = await runSession(workers[i]!.url, clip, r.frameMs, 1_200, false);
        // A turn closed before the sentence's last part began: the user was cut off mid-sentence.
        if (run.turnEndsMs.some((end) => end < lastPartStartMs(clip))) {
          r.cut++;
          r.cutTexts.push(clip.parts.map((p) => p.text).join(' / '));
        }
        r.of++;
        for (const d of run.decisions) {
          const key = d.verdict ? `${d.by} ${d.verdict}` : d.by;
          r.decided.set(key, (r.decided.get(key) ?? 0) + 1);
        }
      }
      busy.delete(i);
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, lane));
    results.forEach((r, i) => {
      const sessions = r.set === 'questions' ? TURNS : r.of;
      r.asrDecodesPerTurn = workers[i]!.asr.spent.decodes / sessions;
      r.asrMsPerTurn = workers[i]!.asr.spent.ms / sessions;
    });
  } finally {
    await Promise.all(workers.map((w) => w.close()));
  }
  return results;
}

const fmt = (v: number) => (Number.isFinite(v) ? String(Math.round(v)) : '-');

export async function benchLatency(): Promise<BenchResult[]> {
  const started = performance.now();
  const loop = monitorEventLoopDelay({ resolution: 5 });
  // One VAD stage with the real turn model when the pinned file can be had; policies (a)-(f) turn it off.
  const real = await realSmartTurn();
  if (real.skip !== null) console.log(`policy (g) skipped: ${real.skip}`);
  const vad = await loadSileroVad(real.path ? { ...DEFAULT_VAD_CONFIG, turnModel: { mode: 'required', path: real.path, sha256: SMART_TURN_V3_2.sha256 } } : DEFAULT_VAD_CONFIG);
  const oracle = new TranscriptOracle();
  const questions = await Promise.all(QUESTIONS.map(async (text) => oracle.register([{ samples: await speak(text), text }])));
  const paused = await Promise.all(
    PAUSED_SENTENCES.map(async ([first, pauseMs, second]) =>
      oracle.register([
        { samples: await speak(first), text: first },
        { samples: silence(pauseMs), text: '' },
        { samples: await speak(second), text: second },
      ]),
    ),
  );
  const onlyPolicies = process.argv.find((a) => a.startsWith('--policies='))?.slice(11);
  const concurrency = Number(process.argv.find((a) => a.startsWith('--concurrency='))?.slice(14) ?? 8);
  const chosen = (p: Policy) => (!onlyPolicies || onlyPolicies.includes(p.key)) && (p.key !== 'g' || real.path !== null);
  const latencyPolicies = POLICIES.filter((p) => p.key !== 'f' && chosen(p));
  const configs: Config[] = [
    ...latencyPolicies.flatMap((policy) => [20, 320].map((frameMs) => ({ policy, frameMs, times: 'central' as const, set: 'questions' as const }))),
    // Model times at the top of their ranges, for ours with and without preemption.
    ...latencyPolicies.filter((p) => p.key === 'a' || p.key === 'b').map((policy) => ({ policy, frameMs: 20, times: 'high' as const, set: 'questions' as const })),
    // Ours without partial transcripts: what incremental transcription costs per turn.
    ...latencyPolicies.filter((p) => p.key === 'a').map((policy) => ({ policy, frameMs: 20, times: 'central' as const, set: 'questions' as const, partials: false })),
    ...POLICIES.filter(chosen).map((policy) => ({ policy, frameMs: 20, times: 'central' as const, set: 'pauses' as const })),
  ];
  loop.enable();
  const all = await runAll(vad, oracle, questions, paused, configs, concurrency);
  loop.disable();
  await vad.dispose();
  const latencies = all.filter((r) => r.set === 'questions' && r.partials !== false);
  const withoutPartials = all.find((r) => r.set === 'questions' && r.partials === false);
  const falseEndpoints = all.filter((r) => r.set === 'pauses');

  const row = (policy: Policy, frameMs: number, times: 'central' | 'high') => latencies.find((r) => r.policy === policy && r.frameMs === frameMs && r.times === times);
  const stats = (r: ConfigResult | undefined) => {
    if (!r) return '-';
    const sorted = [...r.values].sort((a, b) => a - b);
    return `${fmt(quantile(sorted, 0.5))} / ${fmt(quantile(sorted, 0.9))}`;
  };
  const lines = [
    '| policy | 20 ms frames p50 / p90 | 320 ms frames p50 / p90 | 20 ms, model times at top of range p50 / p90 | false endpoints (mid-sentence pauses) |',
    '|---|---|---|---|---|',
    ...POLICIES.map((p) => {
      const fe = falseEndpoints.find((f) => f.policy === p) ?? { cut: NaN, of: 0 };
      const cells = [stats(row(p, 20, 'central')), stats(row(p, 320, 'central')), stats(row(p, 20, 'high'))];
      return `| (${p.key}) ${p.name} | ${cells.join(' | ')} | ${fe.cut} / ${fe.of} |`;
    }),
  ];
  const missing = latencies.reduce((n, r) => n + r.missing, 0);
  const early = latencies.filter((r) => r.early > 0).map((r) => `(${r.policy.key}) ${r.frameMs} ms${r.times === 'high' ? ' slow' : ''}: ${r.early}`);
  const turnRow = falseEndpoints.find((f) => f.policy.key === 'g');
  if (turnRow) {
    const counts = [...turnRow.decided].map(([key, n]) => `${key}: ${n}`).join(', ');
    console.log(`\n(g) on the paused sentences, what decided each answered turn's endpoint: ${counts || 'none answered'}; cut: ${turnRow.cutTexts.join('; ') || 'none'}`);
    const ours = falseEndpoints.find((f) => f.policy.key === 'a');
    if (ours) console.log(`(a) cut: ${ours.cutTexts.join('; ') || 'none'}`);
  }
  console.log(`\nFirst audio, ms from the true end of speech to the first answer audio at the client (${TURNS} turns per cell; calibrated L4 model times):\n`);
  console.log(lines.join('\n'));
  console.log(
    `\nanswered before the question was finished (cut off, not in the percentiles): ${early.join(', ') || 'none'}; ${missing} turn(s) without an answer; wall time ${Math.round((performance.now() - started) / 1000)} s; event-loop delay p50 ${(loop.percentile(50) / 1e6).toFixed(1)} ms, p99 ${(loop.percentile(99) / 1e6).toFixed(1)} ms, max ${(loop.max / 1e6).toFixed(0)} ms`,
  );

  const ours = row(POLICIES[0]!, 20, 'central');
  if (ours && withoutPartials) {
    const sorted = [...withoutPartials.values].sort((a, b) => a - b);
    console.log(
      `partial transcripts (every ${BASE_CONFIG.sessions.partialTranscriptMs} ms of speech), ours with 20 ms frames: ${ours.asrDecodesPerTurn.toFixed(1)} ASR decodes and ${fmt(ours.asrMsPerTurn)} ms of calibrated ASR time per turn, against ${withoutPartials.asrDecodesPerTurn.toFixed(1)} and ${fmt(withoutPartials.asrMsPerTurn)} ms without them (first audio without them ${fmt(quantile(sorted, 0.5))} / ${fmt(quantile(sorted, 0.9))})`,
    );
  }

  const results: BenchResult[] = [];
  for (const r of latencies) {
    const isOurs = r.policy.key === 'a' && r.frameMs === 20 && r.times === 'central';
    results.push(
      summarize(`latency L4 (${r.policy.key}) ${r.policy.name}, ${r.frameMs} ms frames${r.times === 'high' ? ', slow models' : ''}`, 'ms', r.values, isOurs ? { median: 450, p90: 600 } : undefined, 'calibrated'),
    );
  }
  return results;
}
