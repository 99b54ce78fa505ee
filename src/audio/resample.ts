/**
 * Sample-rate conversion with libsamplerate (compiled to WebAssembly by @alexanderolsen/libsamplerate-js):
 * band-limited sinc interpolation, far cleaner than linear interpolation, which aliases.
 * The work is synchronous WASM, so long inputs are converted in slices that yield to the event
 * loop between them (about 5 ms of work each on a build machine core).
 */
import samplerate from '@alexanderolsen/libsamplerate-js';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { concatFloat32 } from './pcm.js';

const { create, ConverterType } = samplerate;

export type ResampleQuality = 'fastest' | 'medium';

const CONVERTER = {
  fastest: ConverterType.SRC_SINC_FASTEST,
  medium: ConverterType.SRC_SINC_MEDIUM_QUALITY,
} as const;

/** Input samples per slice between event-loop turns. */
const SLICE_SAMPLES = 16_384;
/** Zeros fed at the end so the converter's internal delay line empties. */
const FLUSH_SAMPLES = 1_024;

/** A stateful converter for audio that arrives in chunks (TTS output, live microphone). */
export class StreamResampler {
  readonly fromRate: number;
  readonly toRate: number;
  readonly #src: Awaited<ReturnType<typeof create>> | null;
  #samplesIn = 0;
  #samplesOut = 0;

  private constructor(fromRate: number, toRate: number, src: Awaited<ReturnType<typeof create>> | null) {
    this.fromRate = fromRate;
    this.toRate = toRate;
    this.#src = src;
  }

  static async create(fromRate: number, toRate: number, quality: ResampleQuality = 'fastest'): Promise<StreamResampler> {
    if (fromRate === toRate) return new StreamResampler(fromRate, toRate, null);
    return new StreamResampler(fromRate, toRate, await create(1, fromRate, toRate, { converterType: CONVERTER[quality] }));
  }

  /** Converts the next chunk. Output lags input by the converter's delay until `flush()`. */
  process(chunk: Float32Array): Float32Array {
    this.#samplesIn += chunk.length;
    if (!this.#src) return chunk.slice();
    const out = this.#src.full(chunk);
    this.#samplesOut += out.length;
    return out;
  }

  /** Ends the stream: returns what the converter still holds, trimmed to the exact length. */
  flush(): Float32Array {
    if (!this.#src) return new Float32Array(0);
    const expected = Math.round((this.#samplesIn * this.toRate) / this.fromRate);
    const tail = this.#src.full(new Float32Array(FLUSH_SAMPLES));
    const wanted = Math.max(0, Math.min(tail.length, expected - this.#samplesOut));
    this.#samplesOut += wanted;
    return tail.slice(0, wanted);
  }

  dispose(): void {
    this.#src?.destroy();
  }
}

/** Converts a whole signal, yielding to the event loop between slices. */
export async function resample(samples: Float32Array, fromRate: number, toRate: number, quality: ResampleQuality = 'medium'): Promise<Float32Array> {
  if (fromRate === toRate) return samples;
  const converter = await StreamResampler.create(fromRate, toRate, quality);
  try {
    const parts: Float32Array[] = [];
    for (let start = 0; start < samples.length; start += SLICE_SAMPLES) {
      parts.push(converter.process(samples.subarray(start, start + SLICE_SAMPLES)));
      if (start + SLICE_SAMPLES < samples.length) await yieldToEventLoop();
    }
    parts.push(converter.flush());
    return concatFloat32(parts);
  } finally {
    converter.dispose();
  }
}
