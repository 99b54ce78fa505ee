/**
 * Pipeline overhead on the test profile: overhead_ms (first audio time minus the endpoint and
 * model time on its critical path) over repeated turns, through the real handler and engines
 * (tiny models, Silero VAD, the VibeVoice protocol double). Also first_audio_ms for the record;
 * with tiny models it is mostly the 250 ms endpoint. And cancellation: from aborting a job in the
 * middle of an answer that would never end (the endless tiny model) to the LLM and TTS having stopped.
 */
import { writeFile } from 'node:fs/promises';
import { tinyQwenGguf } from '../builder/tiny-models/tiny-qwen.js';
import { createS2sHandler } from '../handler/s2s-handler.js';
import { Logger } from '../src/log/logger.js';
import { makeUtterance, wavOf } from '../test/fixtures/speech.js';
import { testProfileEnv } from '../test/helpers/test-profile.js';
import { summarize, type BenchResult } from './stats.js';

export async function benchPipeline(): Promise<BenchResult[]> {
  const log = new Logger({ level: 'ERROR', jsonLines: true, write: () => undefined });
  const handler = await createS2sHandler({ log, env: await testProfileEnv() });
  const utterance = await makeUtterance([{ silenceMs: 300 }, { say: 'What is the capital of France?' }, { silenceMs: 600 }]);
  const audio = wavOf(utterance.samples, 16_000).toString('base64');
  const overhead: number[] = [];
  const firstAudio: number[] = [];
  const critical: number[] = [];
  try {
    for (let turn = 0; turn < 60; turn++) {
      for await (const event of handler.handle({ id: `bench-${turn}`, input: { audio }, log, progress: async () => undefined }, new AbortController().signal)) {
        const e = event as { type: string; overhead_ms?: number; first_audio_ms?: number; endpoint_ms?: number };
        if (e.type !== 'metrics' || turn < 5) continue;
        overhead.push(e.overhead_ms!);
        firstAudio.push(e.first_audio_ms!);
        critical.push(e.first_audio_ms! - e.endpoint_ms!);
      }
    }
  } finally {
    await handler.dispose();
  }
  return [
    ...(await benchCancel(audio, log)),
    summarize('turn overhead_ms (test profile)', 'ms', overhead, { median: 5, p99: 20 }),
    summarize('turn first_audio_ms (test profile, 250 ms endpoint)', 'ms', firstAudio),
    summarize('turn first_audio_ms minus endpoint (test profile)', 'ms', critical),
  ];
}

/** Abort after the first audio chunk; the handler's generator ends only once both the LLM stream and the TTS speaker have stopped. */
async function benchCancel(audio: string, log: Logger): Promise<BenchResult[]> {
  const env = await testProfileEnv({ S2S_MAX_RESPONSE_TOKENS: '2000' });
  await writeFile(`${env['S2S_MODELS_DIR']}/test/tiny-qwen.gguf`, tinyQwenGguf({ endless: true }));
  const handler = await createS2sHandler({ log, env });
  const stopped: number[] = [];
  try {
    for (let round = 0; round < 20; round++) {
      const abort = new AbortController();
      const events = handler.handle({ id: `cancel-${round}`, input: { audio }, log, progress: async () => undefined }, abort.signal)[Symbol.asyncIterator]();
      for (let next = await events.next(); !next.done; next = await events.next()) {
        if ((next.value as { type: string }).type === 'audio') break;
      }
      const aborted = performance.now();
      abort.abort();
      while (!(await events.next()).done) {
        // drain what was already under way
      }
      stopped.push(performance.now() - aborted);
    }
  } finally {
    await handler.dispose();
  }
  return [summarize('cancel mid-answer -> LLM and TTS stopped', 'ms', stopped, { p99: 100 })];
}
