/**
 * An ASR double that returns given words instead of decoding: a fixed text, or one chosen from the
 * audio it is given (for example by its length). An optional delay stands in for decode time. For
 * tests that need exact words (adaptive endpointing cues, preemptive responses, history).
 */
import type { Asr, Transcript } from '../../src/asr/asr.js';

export interface ScriptedAsrOptions {
  /** The transcript, or a function of the audio (16 kHz mono) that gives it. */
  text: string | ((samples: Float32Array, call: number) => string);
  delayMs?: number;
}

export class ScriptedAsrDouble implements Asr {
  /** Every call's audio length (samples) and the text returned. */
  readonly calls: { samples: number; text: string }[] = [];
  constructor(readonly options: ScriptedAsrOptions) {}

  async transcribe(samples: Float32Array, options: { signal?: AbortSignal } = {}): Promise<Transcript> {
    const started = performance.now();
    if (this.options.delayMs) await new Promise((resolve) => setTimeout(resolve, this.options.delayMs));
    options.signal?.throwIfAborted();
    const text = typeof this.options.text === 'string' ? this.options.text : this.options.text(samples, this.calls.length);
    this.calls.push({ samples: samples.length, text });
    return { text, asrMs: performance.now() - started, audioMs: (samples.length / 16_000) * 1000, windows: 1 };
  }

  dispose(): void {}
}
