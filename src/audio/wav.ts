/**
 * WAV (RIFF/WAVE) decoding and encoding. Decodes integer PCM of 8, 16, 24 and 32 bits and IEEE
 * float32 (also inside WAVE_FORMAT_EXTENSIBLE), any channel count, into float32 planes in [-1, 1].
 * Everything else is refused with a message naming what was found.
 */
import { InvalidInputError } from '../errors.js';

export interface DecodedAudio {
  sampleRate: number;
  /** One Float32Array per channel, equal lengths. */
  channels: Float32Array[];
}

const FORMAT_PCM = 0x0001;
const FORMAT_FLOAT = 0x0003;
const FORMAT_EXTENSIBLE = 0xfffe;
/** Data sizes from here up are placeholders of streaming writers (sox writes 0x7ffff000, ffmpeg 0xffffffff). */
const STREAMED_SIZE_MARK = 0x7fff0000;

/** Names of common compressed WAV encodings, so the error says what was sent. */
const KNOWN_FORMATS: Record<number, string> = {
  0x0002: 'Microsoft ADPCM',
  0x0006: 'A-law',
  0x0007: 'mu-law',
  0x0011: 'IMA ADPCM',
  0x0031: 'GSM 6.10',
  0x0050: 'MPEG',
  0x0055: 'MP3',
  0x00ff: 'AAC',
};

export function decodeWav(bytes: Uint8Array): DecodedAudio {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const ascii = (offset: number) => String.fromCharCode(...bytes.subarray(offset, offset + 4));
  if (bytes.byteLength < 12 || ascii(0) !== 'RIFF' || ascii(8) !== 'WAVE') {
    throw new InvalidInputError('audio is not a WAV file (no RIFF/WAVE header); send a WAV or set audio_format "pcm16"');
  }
  let format: { code: number; channels: number; sampleRate: number; bitsPerSample: number; blockAlign: number } | null = null;
  let offset = 12;
  while (offset + 8 <= bytes.byteLength) {
    const id = ascii(offset);
    const size = view.getUint32(offset + 4, true);
    const body = offset + 8;
    if (id === 'fmt ') {
      if (size < 16 || body + 16 > bytes.byteLength) throw new InvalidInputError('truncated WAV: the fmt chunk is incomplete');
      let code = view.getUint16(body, true);
      if (code === FORMAT_EXTENSIBLE && size >= 40 && body + 26 <= bytes.byteLength) code = view.getUint16(body + 24, true);
      format = {
        code,
        channels: view.getUint16(body + 2, true),
        sampleRate: view.getUint32(body + 4, true),
        blockAlign: view.getUint16(body + 12, true),
        bitsPerSample: view.getUint16(body + 14, true),
      };
    } else if (id === 'data') {
      if (!format) throw new InvalidInputError('malformed WAV: the data chunk comes before the fmt chunk');
      const available = bytes.byteLength - body;
      // Writers that could not seek back (pipes) leave 0 or a size near 2^31 or 2^32: take what is there.
      const unknownLength = size === 0 || size >= STREAMED_SIZE_MARK;
      const declared = unknownLength ? available - (available % Math.max(1, format.blockAlign)) : size;
      if (declared > available) {
        throw new InvalidInputError(`truncated WAV: the data chunk declares ${declared} bytes but only ${available} are present`);
      }
      return decodeSamples(bytes.subarray(body, body + declared), format);
    }
    offset = body + size + (size % 2);
  }
  if (!format) throw new InvalidInputError('malformed WAV: no fmt chunk');
  throw new InvalidInputError('truncated WAV: no data chunk');
}

function decodeSamples(
  data: Uint8Array,
  format: { code: number; channels: number; sampleRate: number; bitsPerSample: number; blockAlign: number },
): DecodedAudio {
  const { code, channels, sampleRate, bitsPerSample } = format;
  const isPcm = code === FORMAT_PCM && [8, 16, 24, 32].includes(bitsPerSample);
  const isFloat = code === FORMAT_FLOAT && bitsPerSample === 32;
  if (!isPcm && !isFloat) {
    const name = KNOWN_FORMATS[code] ?? (code === FORMAT_PCM || code === FORMAT_FLOAT ? `${bitsPerSample}-bit` : 'unknown');
    throw new InvalidInputError(
      `unsupported WAV encoding: format 0x${code.toString(16).padStart(4, '0')} (${name}, ${bitsPerSample} bits); send PCM (8/16/24/32-bit) or float32`,
    );
  }
  if (channels < 1 || channels > 8) throw new InvalidInputError(`unsupported WAV: ${channels} channels (1 to 8 are accepted)`);
  if (sampleRate < 8_000 || sampleRate > 48_000) {
    throw new InvalidInputError(`unsupported WAV sample rate ${sampleRate} Hz: 8000 to 48000 Hz are accepted`);
  }
  const bytesPerSample = bitsPerSample / 8;
  const frames = Math.floor(data.byteLength / (bytesPerSample * channels));
  if (frames === 0) throw new InvalidInputError('the WAV holds no audio samples');
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const planes = Array.from({ length: channels }, () => new Float32Array(frames));
  const read = sampleReader(view, isFloat, bitsPerSample);
  for (let frame = 0, position = 0; frame < frames; frame++) {
    for (let channel = 0; channel < channels; channel++, position += bytesPerSample) {
      planes[channel]![frame] = read(position);
    }
  }
  return { sampleRate, channels: planes };
}

function sampleReader(view: DataView, isFloat: boolean, bits: number): (position: number) => number {
  if (isFloat) return (p) => view.getFloat32(p, true);
  switch (bits) {
    case 8:
      return (p) => (view.getUint8(p) - 128) / 128;
    case 16:
      return (p) => view.getInt16(p, true) / 32768;
    case 24:
      return (p) => ((view.getUint8(p) | (view.getUint8(p + 1) << 8) | (view.getInt8(p + 2) << 16)) / 8388608);
    default:
      return (p) => view.getInt32(p, true) / 2147483648;
  }
}

/** A mono PCM16 WAV file. */
export function encodeWav(pcm16: Int16Array, sampleRate: number): Buffer {
  const dataBytes = pcm16.byteLength;
  const out = Buffer.alloc(44 + dataBytes);
  out.write('RIFF', 0, 'ascii');
  out.writeUInt32LE(36 + dataBytes, 4);
  out.write('WAVE', 8, 'ascii');
  out.write('fmt ', 12, 'ascii');
  out.writeUInt32LE(16, 16);
  out.writeUInt16LE(FORMAT_PCM, 20);
  out.writeUInt16LE(1, 22);
  out.writeUInt32LE(sampleRate, 24);
  out.writeUInt32LE(sampleRate * 2, 28);
  out.writeUInt16LE(2, 32);
  out.writeUInt16LE(16, 34);
  out.write('data', 36, 'ascii');
  out.writeUInt32LE(dataBytes, 40);
  Buffer.from(pcm16.buffer, pcm16.byteOffset, dataBytes).copy(out, 44);
  return out;
}
