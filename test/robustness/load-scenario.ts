/**
 * Load and soak on the test profile (tiny models, the VibeVoice protocol double), shared by the
 * short form in `npm test` and the long form in `npm run bench -- soak`: the real QueueWorker and
 * local RunPod API, the real S2S handler and real clients (runpod-sdk, WebSocket sessions).
 *
 *  1. sequential turn jobs on one worker, each checked: every stream chunk exactly once, in order
 *     (the audio `seq` has no gap and no repeat, the stream equals the job's aggregate output),
 *     one `done`, last;
 *  2. pairs of concurrent turn jobs sharing the one TTS server;
 *  3. several concurrent live sessions (session jobs), each speaking `sessionTurns` turns in real time.
 * Resources are sampled after a warm-up job and at the end: RSS, heap after GC, open fds,
 * listeners on the shutdown signal and on `process`; event-loop delay p99 over the whole run;
 * latency drift from the first to the last hundred turn jobs.
 */
import { createS2sHandler, type S2sHandler } from '../../handler/s2s-handler.js';
import type { SimulatedJob } from '../../handler/local/runpod-api.js';
import type { HandlerDefinition } from '../../handler/runtime/types.js';
import { encodeBase64 } from '../../src/audio/base64.js';
import { Logger } from '../../src/log/logger.js';
import { makeUtterance, wavOf } from '../fixtures/speech.js';
import { API_KEY, startHarness, waitFor, type Harness } from '../helpers/harness.js';
import { SessionClient } from '../helpers/session-client.js';
import { testProfileEnv } from '../helpers/test-profile.js';
import { espeakTtsEnv, freePort, type EspeakServerOptions } from '../helpers/tts-sidecar.js';
import { sampleResources, watchEventLoop, watchListenerWarnings, type ResourceSample, type Tally } from './tally.js';

/** Resources after a phase of the load: the warm-up, each 100 sequential turn jobs, the pairs, each round of sessions. */
export interface MemoryPoint extends ResourceSample {
  after: string;
}

export interface LoadOptions {
  turnJobs: number;
  concurrentPairs: number;
  sessions: number;
  /** Rounds of `sessions` concurrent sessions, one after another (default 1). */
  sessionRounds?: number;
  sessionTurns: number;
  tally: Tally;
  /** Every log line of the worker and the handler, for the secrets check. */
  logs: string[];
  progress?: (line: string) => void;
}

export interface LoadResult {
  turnLatenciesMs: number[];
  /** Resources after the warm-up and after every 100 sequential turn jobs. */
  memory: MemoryPoint[];
  pairLatenciesMs: number[];
  sessionTurnMs: number[];
  listenerWarnings: string[];
  /** The API key and every session token handed out: none may appear in a log. */
  secrets: string[];
  /** Median latency of the first and the last (up to) hundred sequential turn jobs. */
  drift: { firstMedianMs: number; lastMedianMs: number; window: number };
}

interface AudioEvent {
  type: string;
  turn?: number;
  seq?: number;
}

/** Loss and duplication of one finished turn job, from what the platform holds for it. */
export function checkTurnJob(job: Readonly<SimulatedJob> | undefined, id: string): { lost: number; duplicated: number; problem: string | null } {
  if (!job) return { lost: 1, duplicated: 0, problem: `job ${id} unknown to the API` };
  if (job.status !== 'COMPLETED') return { lost: 1, duplicated: 0, problem: `job ${id} is ${job.status}: ${job.error ?? ''}` };
  const stream = job.stream as AudioEvent[];
  const output = job.output as AudioEvent[];
  let lost = 0;
  let duplicated = 0;
  const seen = new Map<number, Set<number>>();
  for (const event of stream) {
    if (event.type !== 'audio') continue;
    const seqs = seen.get(event.turn ?? 0) ?? new Set<number>();
    if (seqs.has(event.seq!)) duplicated++;
    seqs.add(event.seq!);
    seen.set(event.turn ?? 0, seqs);
  }
  for (const seqs of seen.values()) {
    const max = Math.max(...seqs);
    lost += max + 1 - seqs.size; // a gap in seq is a chunk lost
  }
  const dones = stream.filter((e) => e.type === 'done').length;
  if (dones === 0) lost += 1;
  else if (stream.at(-1)?.type !== 'done') lost += 1; // events after done: the order is broken
  if (dones > 1) duplicated += dones - 1;
  if (!Array.isArray(output) || JSON.stringify(output) !== JSON.stringify(stream)) {
    const extra = stream.length - (Array.isArray(output) ? output.length : 0);
    if (extra > 0) duplicated += extra;
    else lost += Math.max(1, -extra);
  }
  const problem = lost || duplicated ? `job ${id}: ${lost} lost, ${duplicated} duplicated` : null;
  return { lost, duplicated, problem };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
};

/** Our TTS server's espeak-ng double without its 20 ms pause per frame (the load is on the worker, not on waiting). */
export async function fastTtsEnv(options: EspeakServerOptions = {}): Promise<Record<string, string>> {
  return espeakTtsEnv({ frameMs: 0, ...options });
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const { tally, logs } = options;
  const say = options.progress ?? (() => undefined);
  const log = new Logger({ level: 'DEBUG', jsonLines: true, write: (line) => logs.push(line) });
  const env = await testProfileEnv({
    ...(await fastTtsEnv()),
    S2S_SESSION_PORT: String(await freePort()),
    S2S_SESSION_HOST: '127.0.0.1',
    S2S_MAX_CONVERSATIONS: String(Math.max(4, options.sessions + 2)),
    S2S_MAX_RESPONSE_TOKENS: '24',
  });
  // The session port is bound now, as a queue worker does: a port found free and opened only at the first
  // session job, after the turn jobs, could be taken meanwhile by another test file's socket.
  const s2s: S2sHandler = await createS2sHandler({ log, env, listenForSessions: true });
  let shutdown: AbortSignal | undefined;
  // The same handler, noting the worker's shutdown signal so its listeners can be counted.
  const handler: HandlerDefinition = {
    returnAggregateStream: s2s.returnAggregateStream,
    concurrency: s2s.concurrency,
    handle(job, signal) {
      shutdown ??= job.shutdown;
      return s2s.handle(job, signal);
    },
  };
  const harness = await startHarness({
    handler,
    // Results are checked as each job ends; the API need not keep them (it would grow this process).
    api: { resultRetentionMs: 5_000 },
  });
  harness.logs.length = 0;
  const workerLogs = harness.logs;
  const warnings = watchListenerWarnings();
  const utterance = await makeUtterance([{ silenceMs: 200 }, { say: 'What is the weather like today?' }, { silenceMs: 700 }]);
  const audio = encodeBase64(wavOf(utterance.samples, 16_000));
  const input = { audio, max_response_tokens: 16 };

  const record = (id: string) => {
    tally.add('jobsRun');
    const check = checkTurnJob(harness.api.job(id), id);
    tally.add('resultsLost', check.lost);
    tally.add('resultsDuplicated', check.duplicated);
    if (check.problem) say(check.problem);
  };
  const runOne = async (): Promise<number> => {
    const started = performance.now();
    const { id } = await harness.endpoint.run({ input });
    await waitFor(() => ['COMPLETED', 'FAILED', 'TIMED_OUT', 'CANCELLED'].includes(harness.api.job(id)?.status ?? ''), 120_000);
    const ms = performance.now() - started;
    record(id);
    return ms;
  };

  try {
    await runOne(); // warm-up: first-call costs do not count as a leak
    const start = sampleResources(shutdown);
    const loop = watchEventLoop();

    const turnLatenciesMs: number[] = [];
    // Memory every 100 jobs, so a long run shows whether growth levels off or keeps climbing.
    const memory: MemoryPoint[] = [{ after: 'warm-up', ...start }];
    for (let n = 0; n < options.turnJobs; n++) {
      turnLatenciesMs.push(await runOne());
      if ((n + 1) % 100 === 0) {
        memory.push({ after: `${n + 1} turn jobs`, ...sampleResources(shutdown) });
        say(`turn jobs: ${n + 1}/${options.turnJobs}, last ${turnLatenciesMs.at(-1)!.toFixed(0)} ms, RSS ${memory.at(-1)!.rssMb.toFixed(0)} MB`);
      }
    }

    const pairLatenciesMs: number[] = [];
    for (let n = 0; n < options.concurrentPairs; n++) pairLatenciesMs.push(...(await Promise.all([runOne(), runOne()])));
    say(`concurrent pairs: ${options.concurrentPairs}`);

    memory.push({ after: `${options.concurrentPairs} concurrent pairs`, ...sampleResources(shutdown) });

    const sessionTurnMs: number[] = [];
    const tokens: string[] = [];
    // More than one round tells memory that concurrent sessions take once (more LLM sequences in use) from a leak.
    for (let round = 1; round <= (options.sessionRounds ?? 1); round++) {
      await Promise.all(Array.from({ length: options.sessions }, () => runSession(harness, utterance.samples, options.sessionTurns, tally, sessionTurnMs, tokens)));
      memory.push({ after: `session round ${round}`, ...sampleResources(shutdown) });
      say(`sessions, round ${round}: ${options.sessions} x ${options.sessionTurns} turns, RSS ${memory.at(-1)!.rssMb.toFixed(0)} MB`);
    }

    const eventLoopDelayP99Ms = loop.stop();
    // Let sockets and timers of finished jobs close before the end sample.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const end = sampleResources(shutdown);
    tally.resources = { start, end, eventLoopDelayP99Ms };
    const window = Math.min(100, Math.floor(turnLatenciesMs.length / 2));
    return {
      turnLatenciesMs,
      pairLatenciesMs,
      sessionTurnMs,
      memory,
      listenerWarnings: warnings.warnings,
      secrets: [API_KEY, ...tokens],
      drift: { firstMedianMs: median(turnLatenciesMs.slice(0, window)), lastMedianMs: median(turnLatenciesMs.slice(-window)), window },
    };
  } finally {
    warnings.stop();
    logs.push(...workerLogs);
    await harness.close();
    await s2s.dispose();
  }
}

/** One session job: invitation, a client that speaks `turns` turns in real time, `end`, one `done`. */
async function runSession(harness: Harness, speech: Float32Array, turns: number, tally: Tally, turnMs: number[], tokens: string[]): Promise<void> {
  const { id } = await harness.endpoint.run({ input: { mode: 'session', idle_timeout_ms: 30_000, max_response_tokens: 16 } });
  await waitFor(() => (harness.api.job(id)?.stream.length ?? 0) >= 1, 30_000);
  const invitation = harness.api.job(id)!.stream[0] as { url: string; token: string };
  tokens.push(invitation.token);
  const client = await SessionClient.connect(`${invitation.url}?token=${invitation.token}`);
  tally.add('sessionsRun');
  await client.waitFor((e) => e.type === 'ready');
  for (let turn = 0; turn < turns; turn++) {
    const started = performance.now();
    await client.sendAudio(speech, { realtime: true });
    await client.waitFor((e) => e.type === 'metrics' && e['turn'] === turn, 60_000);
    turnMs.push(performance.now() - started);
  }
  client.send({ type: 'end' });
  await client.closed;
  await waitFor(() => ['COMPLETED', 'FAILED'].includes(harness.api.job(id)?.status ?? ''), 30_000);
  const job = harness.api.job(id)!;
  const dones = job.stream.filter((e) => (e as { type: string }).type === 'done').length;
  const ends = client.events('session_end').length;
  if (job.status !== 'COMPLETED' || dones === 0 || ends === 0) tally.add('resultsLost');
  if (dones > 1 || ends > 1) tally.add('resultsDuplicated', Math.max(dones, ends) - 1);
  const metrics = client.events('metrics').map((e) => e['turn'] as number);
  if (new Set(metrics).size !== metrics.length) tally.add('resultsDuplicated', metrics.length - new Set(metrics).size);
  if (new Set(metrics).size < turns) tally.add('resultsLost', turns - new Set(metrics).size);
}
