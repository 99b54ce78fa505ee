/**
 * A TTS double whose streams answer with a short tone: once a stream has text, `chunks` chunks
 * `delayMs` apart, then it finishes when the stream is ended. It honours its signal and records
 * every stream (its priority, the text pushed, whether it was promoted, ended or cut). For pipeline
 * tests where the espeak-ng server double would only add time (preemption, ordering).
 */
import { AsyncQueue } from '../../src/util/async-queue.js';
import type { Tts, TtsPriority, TtsStream, TtsStreamOptions, TtsStreamStats } from '../../src/tts/tts.js';

export interface ToneStreamRecord {
  priority: TtsPriority;
  text: string;
  promoted: boolean;
  ended: boolean;
  aborted: boolean;
}

export class ToneTtsDouble implements Tts {
  readonly voices = ['tone'];
  readonly defaultVoice = 'tone';
  /** Every stream opened, in order. */
  readonly streams: ToneStreamRecord[] = [];
  constructor(readonly options: { chunks?: number; chunkSamples?: number; delayMs?: number } = {}) {}

  open(options: TtsStreamOptions): TtsStream {
    const record: ToneStreamRecord = { priority: options.priority ?? 'confirmed', text: '', promoted: false, ended: false, aborted: false };
    this.streams.push(record);
    const stats: TtsStreamStats = { ttfbMs: null, firstTextAt: null, queued: false, queueWaitMs: 0, samples: 0, spokenText: '' };
    const { chunks = 3, chunkSamples = 2_400, delayMs = 2 } = this.options;
    const audio = new AsyncQueue<Int16Array>();
    let hasText!: () => void;
    const textArrived = new Promise<void>((resolve) => (hasText = resolve));
    let endNow!: () => void;
    const ended = new Promise<void>((resolve) => (endNow = resolve));
    const aborted = new Promise<void>((resolve) => options.signal.addEventListener('abort', () => resolve(), { once: true }));
    const run = async () => {
      if ((await Promise.race([textArrived.then(() => 'text' as const), ended.then(() => 'end' as const), aborted.then(() => 'abort' as const)])) !== 'text') return;
      for (let i = 0; i < chunks; i++) {
        await new Promise((resolve) => setTimeout(resolve, delayMs));
        if (options.signal.aborted) return;
        const pcm = Int16Array.from({ length: chunkSamples }, (_, n) => Math.round(8_000 * Math.sin((2 * Math.PI * 440 * n) / 24_000)));
        stats.ttfbMs ??= performance.now() - stats.firstTextAt!;
        stats.samples += pcm.length;
        audio.push(pcm);
      }
      await Promise.race([ended, aborted]);
    };
    void run().then(() => {
      if (options.signal.aborted) record.aborted = true;
      audio.end();
    });
    return {
      stats,
      push(text: string) {
        if (record.ended || options.signal.aborted || !text) return;
        record.text += text;
        stats.spokenText += text;
        stats.firstTextAt ??= performance.now();
        hasText();
      },
      end() {
        record.ended = true;
        endNow();
      },
      promote() {
        record.promoted = true;
      },
      [Symbol.asyncIterator]: () => audio[Symbol.asyncIterator](),
    };
  }

  async dispose(): Promise<void> {}
}
