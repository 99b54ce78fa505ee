/**
 * An ASR double that takes `decodeMs` per call and records each call and its signal. Like the real
 * engine (sherpa-onnx decodes a window natively), it checks its signal before decoding and cannot
 * be stopped midway. For tests of who calls ASR when, and what they cancel.
 */
import type { Asr, Transcript } from '../../src/asr/asr.js';

export interface AsrCall {
  samples: number;
  signal: AbortSignal | undefined;
  /** The call got as far as decoding (its signal had not fired yet). */
  decoded: boolean;
}

export class RecordingAsrDouble implements Asr {
  readonly calls: AsrCall[] = [];
  inFlight = 0;
  maxInFlight = 0;

  constructor(
    readonly decodeMs: number,
    readonly text = 'one two three four five six',
  ) {}

  async transcribe(samples: Float32Array, options: { signal?: AbortSignal } = {}): Promise<Transcript> {
    const call: AsrCall = { samples: samples.length, signal: options.signal, decoded: false };
    this.calls.push(call);
    options.signal?.throwIfAborted();
    call.decoded = true;
    this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
    try {
      await new Promise((resolve) => setTimeout(resolve, this.decodeMs));
      return { text: this.text, asrMs: this.decodeMs, audioMs: (samples.length / 16_000) * 1000, windows: 1 };
    } finally {
      this.inFlight--;
    }
  }

  dispose(): void {}
}
