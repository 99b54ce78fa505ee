/**
 * The fuzz and fault loops shared by the short suites and the soak: the same generators and checks,
 * run `n` times. Each returns the problems it found (empty when all is well) and counts into a Tally.
 */
import { parseJobInput } from '../../handler/job-input.js';
import { DEFAULT_AUDIO_LIMITS, decodeInputAudio } from '../../src/audio/decode-input.js';
import { InvalidInputError } from '../../src/errors.js';
import { createScriptedHandlerDouble } from '../doubles/scripted-handler-double.js';
import { startHarness } from '../helpers/harness.js';
import { fuzzAudio, fuzzJobInput, type Rng } from './fuzz.js';
import type { Tally } from './tally.js';

const CLEAR_INPUT_ERROR = /^(invalid input: |input must be|audio|turns\.)/;

/** A clear input error: an InvalidInputError naming the field or problem, short whatever the input. */
export function unclearError(error: unknown): string | null {
  if (!(error instanceof InvalidInputError)) return `not an InvalidInputError: ${String(error).slice(0, 120)}`;
  if (error.message.length >= 2_000) return `a message of ${error.message.length} chars`;
  if (!CLEAR_INPUT_ERROR.test(error.message)) return `names no field: ${error.message.slice(0, 120)}`;
  return null;
}

/** Generated job inputs straight into parseJobInput (no wire: huge and deep values in full). */
export function fuzzJobInputs(n: number, rng: Rng, goodAudio: string, tally: Tally): { problems: string[]; kinds: Set<string> } {
  const problems: string[] = [];
  const kinds = new Set<string>();
  for (let i = 0; i < n; i++) {
    const { kind, path, input } = fuzzJobInput(rng, goodAudio, false);
    kinds.add(kind);
    tally.add('badInputsTried');
    try {
      parseJobInput(input);
    } catch (error) {
      const problem = unclearError(error);
      if (problem) problems.push(`case ${i} (${kind} at ${path}): ${problem}`);
    }
  }
  return { problems, kinds };
}

/** Generated audio bytes into the decoder: a clear error or finite samples within the limits. */
export async function fuzzAudioInputs(n: number, rng: Rng, tally: Tally): Promise<string[]> {
  const problems: string[] = [];
  const limits = { ...DEFAULT_AUDIO_LIMITS, maxInputMs: 10_000 };
  for (let i = 0; i < n; i++) {
    const { name, bytes, format } = fuzzAudio(rng);
    tally.add('badInputsTried');
    try {
      const audio = await decodeInputAudio(bytes, format === 'pcm16' ? { format, sampleRate: 16_000 } : { format }, limits);
      if (!audio.samples.every(Number.isFinite)) problems.push(`case ${i} (${name}): samples not finite`);
      if (audio.durationMs > limits.maxInputMs) problems.push(`case ${i} (${name}): over the length limit`);
    } catch (error) {
      if (!(error instanceof InvalidInputError)) problems.push(`case ${i} (${name}): ${String(error).slice(0, 120)}`);
    }
  }
  return problems;
}

/**
 * Jobs through the real worker with random transient platform faults on every route (5xx, 429
 * on the posts, cut connections, garbage job-take answers, heartbeat errors): each job's chunks and
 * result must arrive exactly once, in order.
 */
export async function platformFaultLoop(jobs: number, rng: Rng, tally: Tally, logs: string[]): Promise<string[]> {
  const problems: string[] = [];
  const harness = await startHarness({ handler: createScriptedHandlerDouble(), proxy: true });
  const proxy = harness.proxy!;
  try {
    for (let j = 0; j < jobs; j++) {
      const events = 5 + rng.int(16);
      const faults = 1 + rng.int(3);
      for (let f = 0; f < faults; f++) {
        const fault = rng.pick(['stream-5xx', 'stream-429', 'stream-reset', 'done-5xx', 'done-reset', 'take-5xx', 'take-garbage', 'take-hang', 'ping-5xx', 'ping-reset'] as const);
        const [route, kind] = fault.split('-') as [string, string];
        const path = { stream: /\/job-stream\//, done: /\/job-done\//, take: /\/job-take\//, ping: /\/ping\// }[route]!;
        const method = route === 'stream' || route === 'done' ? 'POST' : 'GET';
        const times = route === 'take' ? 1 : 1 + rng.int(2);
        if (kind === '5xx') proxy.addRule({ method, path, times, status: rng.pick([500, 502, 503]), body: 'fault' });
        else if (kind === '429') proxy.addRule({ method, path, times, status: 429, body: '' });
        else if (kind === 'reset') proxy.addRule({ method, path, times, status: 0, body: '', reset: true });
        else if (kind === 'garbage') proxy.addRule({ method, path, times, status: 200, body: rng.pick(['{', '[]', 'null', '{"no":"id"}']) });
        else proxy.addRule({ method, path, times, status: 0, body: '', holdMs: 200 + rng.int(500), reset: true });
        tally.add('faultsInjected', times);
      }
      const job = await harness.endpoint.runSync({ input: { events, interval_ms: rng.int(4) } }, 60_000);
      tally.add('jobsRun');
      const stream = (harness.api.job(job.id)?.stream ?? []).map((e) => (e as { n: number }).n);
      const expected = [...Array(events).keys()];
      if (job.status !== 'COMPLETED') {
        tally.add('resultsLost');
        problems.push(`job ${j}: ${job.status} ${job.error ?? ''}`);
      } else if (JSON.stringify(stream) !== JSON.stringify(expected)) {
        const duplicated = stream.length - new Set(stream).size;
        tally.add('resultsDuplicated', duplicated);
        tally.add('resultsLost', expected.length - new Set(stream).size);
        problems.push(`job ${j}: stream ${JSON.stringify(stream)}`);
      }
    }
  } finally {
    logs.push(...harness.logs);
    await harness.close();
  }
  return problems;
}
