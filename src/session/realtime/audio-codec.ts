/**
 * The Realtime API's audio formats at the edge of the session core, which hears 16 kHz and speaks
 * 24 kHz PCM16: `audio/pcm` (24 kHz PCM16 LE), `audio/pcmu` and `audio/pcma` (G.711 mu-law and
 * A-law at 8 kHz, the telephone formats). G.711 is coded by the `alawmulaw` package (the ITU
 * tables, well used and tested) rather than by tables of our own; rates change with libsamplerate.
 */
import alawmulaw from 'alawmulaw';
import { bytesToPcm16, float32ToPcm16, pcm16ToFloat32 } from '../../audio/pcm.js';
import { StreamResampler } from '../../audio/resample.js';
import { CORE_INPUT_SAMPLE_RATE, CORE_OUTPUT_SAMPLE_RATE } from '../core-types.js';
import type { AudioFormat } from './client-events.js';

const G711_RATE = 8_000;
/** The longest output delta: clients and telephony bridges expect 20-200 ms pieces. */
const MAX_DELTA_MS = 100;

export const formatRate = (format: AudioFormat) => (format.type === 'audio/pcm' ? 24_000 : G711_RATE);
const bytesPerSample = (format: AudioFormat) => (format.type === 'audio/pcm' ? 2 : 1);

function decodeG711(format: AudioFormat, bytes: Uint8Array): Int16Array {
  return format.type === 'audio/pcmu' ? alawmulaw.mulaw.decode(bytes) : alawmulaw.alaw.decode(bytes);
}

function encodeG711(format: AudioFormat, pcm: Int16Array): Uint8Array {
  return format.type === 'audio/pcmu' ? alawmulaw.mulaw.encode(pcm) : alawmulaw.alaw.encode(pcm);
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Client audio in any of the formats to 16 kHz PCM16 for the core. One per session (the converters keep state). */
export class InputAudio {
  readonly #from24k: StreamResampler;
  readonly #from8k: StreamResampler;

  private constructor(from24k: StreamResampler, from8k: StreamResampler) {
    this.#from24k = from24k;
    this.#from8k = from8k;
  }

  static async create(): Promise<InputAudio> {
    return new InputAudio(await StreamResampler.create(24_000, CORE_INPUT_SAMPLE_RATE), await StreamResampler.create(G711_RATE, CORE_INPUT_SAMPLE_RATE));
  }

  /** Decodes one `input_audio_buffer.append`; throws an Error naming the problem for audio that is not in `format`. */
  decode(base64: string, format: AudioFormat): Int16Array {
    if (base64.length % 4 !== 0 || !BASE64.test(base64)) throw new Error('audio must be base64 (A-Z, a-z, 0-9, +, /, padded to a multiple of 4 characters)');
    const bytes = Buffer.from(base64, 'base64');
    if (bytes.length % bytesPerSample(format) !== 0) throw new Error(`audio/pcm is 16-bit samples: an even number of bytes is needed, got ${bytes.length}`);
    if (format.type === 'audio/pcm') return float32ToPcm16(this.#from24k.process(pcm16ToFloat32(bytesToPcm16(bytes))));
    return float32ToPcm16(this.#from8k.process(pcm16ToFloat32(decodeG711(format, bytes))));
  }
}

/** The core's 24 kHz PCM16 in the output format, cut into deltas of at most MAX_DELTA_MS. One per session. */
export class OutputAudio {
  readonly #to8k: StreamResampler;

  private constructor(to8k: StreamResampler) {
    this.#to8k = to8k;
  }

  static async create(): Promise<OutputAudio> {
    return new OutputAudio(await StreamResampler.create(CORE_OUTPUT_SAMPLE_RATE, G711_RATE));
  }

  /** Encoded deltas for a chunk of the answer's audio. */
  encode(pcm: Int16Array, format: AudioFormat): Buffer[] {
    if (format.type === 'audio/pcm') return slices(Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength), format);
    return slices(Buffer.from(encodeG711(format, float32ToPcm16(this.#to8k.process(pcm16ToFloat32(pcm))))), format);
  }

  /** The end of an answer: what the 8 kHz converter still holds (nothing for 24 kHz PCM). */
  finish(format: AudioFormat): Buffer[] {
    if (format.type === 'audio/pcm') return [];
    const tail = this.#to8k.flush();
    return tail.length > 0 ? slices(Buffer.from(encodeG711(format, float32ToPcm16(tail))), format) : [];
  }
}

function slices(bytes: Buffer, format: AudioFormat): Buffer[] {
  const size = ((formatRate(format) * MAX_DELTA_MS) / 1000) * bytesPerSample(format);
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) out.push(Buffer.from(bytes.subarray(at, at + size)));
  return out;
}

