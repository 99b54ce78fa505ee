/**
 * Pipeline overhead on the test profile: overhead_ms (first audio time minus the endpoint and
 * model time on its critical path) over repeated turns, through the real handler and engines
 * (tiny models, Silero VAD, the VibeVoice protocol double). Also first_audio_ms for the record;
 * with tiny models it is mostly the 250 ms endpoint.
 */
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
    summarize('turn overhead_ms (test profile)', 'ms', overhead, { median: 5, p99: 20 }),
    summarize('turn first_audio_ms (test profile, 250 ms endpoint)', 'ms', firstAudio),
    summarize('turn first_audio_ms minus endpoint (test profile)', 'ms', critical),
  ];
}
