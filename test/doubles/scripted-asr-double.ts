/**
 * An ASR double that returns given words instead of decoding: a fixed text, or one chosen from the
 * audio it is given (for example by its length). An optional delay stands in for decode time: a
 * fixed wall-clock one, or one the test controls (`until`, for example "until the stream has
 * advanced so far", which does not depend on the machine's speed). For tests that need exact words
 * (adaptive endpointing cues, preemptive responses, history).
 */
import type { Asr, TranscribeOptions, Transcript } from '../../src/asr/asr.js';
import { levelOf, type WorkClass } from '../../src/util/work-priority.js';

export interface ScriptedAsrOptions {
  /** The transcript, or a function of the audio (16 kHz mono) that gives it. */
  text: string | ((samples: Float32Array, call: number) => string);
  delayMs?: number;
  /** The decode ends when this settles (after `delayMs`, if both are given); an abort ends it sooner. */
  until?: (call: { samples: number; priority: WorkClass }) => Promise<void>;
}

export class ScriptedAsrDouble implements Asr {
  /** Every call's audio length (samples), work class and the text returned. */
  readonly calls: { samples: number; priority: WorkClass; text: string }[] = [];
  constructor(readonly options: ScriptedAsrOptions) {}

  async transcribe(samples: Float32Array, options: TranscribeOptions = {}): Promise<Transcript> {
    const started = performance.now();
    const priority = levelOf(options.priority);
    if (this.options.delayMs) await new Promise((resolve) => setTimeout(resolve, this.options.delayMs));
    if (this.options.until) await abortable(this.options.until({ samples: samples.length, priority }), options.signal);
    options.signal?.throwIfAborted();
    const text = typeof this.options.text === 'string' ? this.options.text : this.options.text(samples, this.calls.length);
    this.calls.push({ samples: samples.length, priority, text });
    return { text, asrMs: performance.now() - started, audioMs: (samples.length / 16_000) * 1000, windows: 1 };
  }

  dispose(): void {}
}

/** `wait`, or the signal's reason once it fires (a decode the listener gave up on never hangs). */
function abortable(wait: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return wait;
  signal.throwIfAborted();
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    wait.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
