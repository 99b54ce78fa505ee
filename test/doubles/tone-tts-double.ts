/**
 * A TTS double that answers each text with a short tone in `chunks` chunks, `delayMs` apart,
 * honouring its signal, and records what it was asked to say. For pipeline tests where the
 * espeak-ng sidecar double would only add time (preemption, ordering).
 */
import type { Synthesis, SynthesisOptions, SynthesisStats, Tts } from '../../src/tts/tts.js';

export class ToneTtsDouble implements Tts {
  readonly voices = ['tone'];
  readonly defaultVoice = 'tone';
  /** Every text asked for, in order, with whether its synthesis was cut by the signal. */
  readonly requests: { text: string; aborted: boolean }[] = [];
  constructor(readonly options: { chunks?: number; chunkSamples?: number; delayMs?: number } = {}) {}

  synthesize(text: string, options: SynthesisOptions): Synthesis {
    const stats: SynthesisStats = { ttfbMs: null, samples: 0, requests: 1 };
    const request = { text, aborted: false };
    this.requests.push(request);
    const { chunks = 3, chunkSamples = 2_400, delayMs = 2 } = this.options;
    const started = performance.now();
    async function* generate(): AsyncGenerator<Int16Array> {
      for (let i = 0; i < chunks; i++) {
        await new Promise((resolve) => setTimeout(resolve, delayMs));
        if (options.signal.aborted) {
          request.aborted = true;
          return;
        }
        const pcm = Int16Array.from({ length: chunkSamples }, (_, n) => Math.round(8_000 * Math.sin((2 * Math.PI * 440 * n) / 24_000)));
        stats.ttfbMs ??= performance.now() - started;
        stats.samples += pcm.length;
        yield pcm;
      }
    }
    return Object.assign(generate(), { stats });
  }

  async dispose(): Promise<void> {}
}
