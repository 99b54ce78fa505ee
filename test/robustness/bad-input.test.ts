/**
 * Generated bad input (seeded: ROBUSTNESS_SEED replays a run): job inputs from a fuzzer over the
 * job schema, random bytes and lying WAV headers as audio, extreme PCM and junk base64. Every case
 * ends in a clear error naming the problem (or is accepted), nothing crashes, memory stays
 * bounded, and a good job right after works.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseJobInput } from '../../handler/job-input.js';
import { createS2sHandler, type S2sHandler } from '../../handler/s2s-handler.js';
import { DEFAULT_AUDIO_LIMITS, decodeBase64Audio } from '../../src/audio/decode-input.js';
import { encodeBase64 } from '../../src/audio/base64.js';
import { Logger } from '../../src/log/logger.js';
import { speak, wavOf } from '../fixtures/speech.js';
import { API_KEY, startHarness, type Harness } from '../helpers/harness.js';
import { testProfileEnv } from '../helpers/test-profile.js';
import { fuzzAudio, fuzzJobInput, junkBase64, Rng } from './fuzz.js';
import { fuzzAudioInputs, fuzzJobInputs, unclearError } from './long-loops.js';
import { fastTtsEnv } from './load-scenario.js';
import { expectNoSecrets } from './secrets.js';
import { collectGarbage, robustnessSeed, Tally } from './tally.js';

const tally = new Tally('bad-input');
const seed = robustnessSeed();
const logs: string[] = [];
let goodAudio: string;
let s2s: S2sHandler;
let harness: Harness;

beforeAll(async () => {
  goodAudio = encodeBase64(wavOf(await speak('Hello there.'), 16_000));
  const log = new Logger({ level: 'DEBUG', jsonLines: true, write: (line) => logs.push(line) });
  s2s = await createS2sHandler({ log, env: await testProfileEnv(await fastTtsEnv()) });
  harness = await startHarness({ handler: s2s });
}, 60_000);
afterAll(async () => {
  await harness?.close();
  await s2s?.dispose();
  logs.push(...(harness?.logs ?? []));
  expectNoSecrets(logs, { values: [API_KEY], audio: true });
  tally.save(inject('robustnessDir'));
});

/**
 * Posts a job as raw JSON text to the local API's /run (the SDK deep-merges requests and would
 * overflow its own stack on deep nesting before the worker ever saw it), then waits for its end.
 */
async function submitRaw(input: unknown): Promise<{ status: string; error?: string }> {
  const response = await fetch(`${harness.api.baseUrl}/${harness.api.endpointId}/run`, {
    method: 'POST',
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ input }),
  });
  const { id } = (await response.json()) as { id: string };
  return harness.endpoint.statusSync(id, 30_000);
}

/** A clear error: names the field or the problem, and stays short whatever the input's size. */
function expectClearError(error: unknown, context: string): void {
  expect(unclearError(error), context).toBeNull();
}

describe('job input errors found by the fuzzer', () => {
  // Found by the fuzzer: a deep `mode` overflowed the stack while the error was written
  // (JSON.stringify of the value), and a huge unknown key or many bad items made a message of megabytes.
  it('a deep value, a huge key and a huge array give a short InvalidInputError', () => {
    let deep: unknown = 'x';
    for (let i = 0; i < 50_000; i++) deep = [deep];
    expect(() => parseJobInput({ mode: deep })).toThrow('invalid input: mode: must be "turn" or "session", got an array');
    expect(() => parseJobInput({ mode: 'k'.repeat(100_000) })).toThrow(/got "k{40}\.\.\."$/);
    for (const input of [{ ['k'.repeat(100_000)]: 1 }, { history: Array.from({ length: 100_000 }, () => 7) }]) {
      try {
        parseJobInput({ audio: 'UklGRg==', ...input });
        expect.unreachable();
      } catch (error) {
        expectClearError(error, 'bounded');
      }
    }
    expect(() => parseJobInput({ audio: 'UklGRg==', history: Array.from({ length: 150 }, () => 7) })).toThrow(/and \d+ more problems$/);
  });
});

describe('job inputs from the schema fuzzer', () => {
  it('every generated input is refused with a short error naming the field, or accepted; nothing leaks into prototypes', () => {
    const heapBefore = (collectGarbage(), process.memoryUsage().heapUsed);
    const { problems, kinds } = fuzzJobInputs(400, new Rng(seed), goodAudio, tally);
    expect(problems).toEqual([]);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('isAdmin');
    expect(kinds.size).toBe(8); // every kind of hostile value was tried
    collectGarbage();
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(200 * 2 ** 20);
  });

  it('through the real worker and handler: each bad job fails with its reason, and a good job right after completes', async () => {
    const rng = new Rng(seed + 1);
    for (let n = 0; n < 12; n++) {
      const { kind, path, input } = fuzzJobInput(rng, goodAudio, true);
      tally.add('badInputsTried');
      tally.add('jobsRun');
      const job = await submitRaw(input);
      expect(['FAILED', 'COMPLETED'], `case ${n} (${kind} at ${path})`).toContain(job.status);
      if (job.status === 'FAILED') expect(job.error!.length, `case ${n} (${kind} at ${path})`).toBeLessThan(2_000);
    }
    tally.add('jobsRun');
    const good = await harness.endpoint.runSync({ input: { audio: goodAudio, max_response_tokens: 8 } }, 30_000);
    expect(good.status).toBe('COMPLETED');
  }, 120_000);
});

describe('audio that lies', () => {
  it('random bytes, lying WAV headers, extreme PCM and NaN floats end in a clear error or finite 16 kHz samples', async () => {
    expect(await fuzzAudioInputs(250, new Rng(seed + 2), tally)).toEqual([]);
  });

  it('junk base64 is refused naming the field', async () => {
    const rng = new Rng(seed + 3);
    for (let n = 0; n < 100; n++) {
      const text = junkBase64(rng);
      tally.add('badInputsTried');
      await expect(decodeBase64Audio(text, { format: 'wav' }, DEFAULT_AUDIO_LIMITS, 'turns.3.audio'), JSON.stringify(text)).rejects.toThrow(/^turns\.3\.audio: |audio|WAV|wav/);
    }
  });

  it('extreme PCM and lying headers through a whole turn job: a clear failure or an answer, and the next good job works', async () => {
    const rng = new Rng(seed + 4);
    for (let n = 0; n < 4; n++) {
      const { name, bytes, format } = fuzzAudio(rng);
      tally.add('badInputsTried');
      tally.add('jobsRun');
      const input = { audio: encodeBase64(bytes), max_response_tokens: 8, ...(format === 'pcm16' ? { audio_format: 'pcm16', sample_rate: 16_000 } : {}) };
      const job = await harness.endpoint.runSync({ input }, 30_000);
      expect(['FAILED', 'COMPLETED'], `case ${n} (${name})`).toContain(job.status);
      if (job.status === 'FAILED') expect(job.error, `case ${n} (${name})`).toMatch(/^audio: /);
    }
    tally.add('jobsRun');
    expect((await harness.endpoint.runSync({ input: { audio: goodAudio, max_response_tokens: 8 } }, 30_000)).status).toBe('COMPLETED');
  }, 120_000);
});
