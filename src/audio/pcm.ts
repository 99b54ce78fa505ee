/** Sample format conversions and small checks on float32 audio. */
import { InvalidInputError } from '../errors.js';

export function pcm16ToFloat32(pcm: Int16Array): Float32Array {
  const out = new Float32Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) out[i] = pcm[i]! / 32768;
  return out;
}

/** Scales by 32768 (the inverse of pcm16ToFloat32), rounds, and clamps to the 16-bit range. */
export function float32ToPcm16(samples: Float32Array): Int16Array {
  const out = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    out[i] = Math.max(-32768, Math.min(32767, Math.round(samples[i]! * 32768)));
  }
  return out;
}

/**
 * Raw little-endian PCM16 bytes as samples, always a copy of exactly these bytes. The input is often
 * a view into a larger buffer (a socket's read buffer holds several messages; `Buffer#slice` is a
 * view, not a copy), so the result must never alias it: later reads reuse that memory.
 */
export function bytesToPcm16(bytes: Uint8Array): Int16Array {
  if (bytes.byteLength % 2 !== 0) throw new InvalidInputError(`raw PCM16 must have an even number of bytes, got ${bytes.byteLength}`);
  const out = new Int16Array(bytes.byteLength / 2);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

/** Averages the channels into one. */
export function downmix(channels: readonly Float32Array[]): Float32Array {
  if (channels.length === 1) return channels[0]!;
  const length = channels[0]!.length;
  const out = new Float32Array(length);
  for (const channel of channels) for (let i = 0; i < length; i++) out[i]! += channel[i]!;
  const scale = 1 / channels.length;
  for (let i = 0; i < length; i++) out[i]! *= scale;
  return out;
}

/** Refuses NaN and infinite samples (float WAVs can carry them), naming the first. */
export function assertFinite(samples: Float32Array): void {
  for (let i = 0; i < samples.length; i++) {
    if (!Number.isFinite(samples[i]!)) {
      throw new InvalidInputError(`audio holds a non-finite sample (${samples[i]}) at sample ${i}`);
    }
  }
}

/** Joins float32 chunks into one array. */
export function concatFloat32(parts: readonly Float32Array[]): Float32Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Float32Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
