/**
 * Audio I/O: WAV decoding of every accepted encoding (files made by sox), clear errors for
 * everything else, strict base64, and resampling that keeps speech-band tones and removes what
 * would alias.
 */
import { describe, expect, it } from 'vitest';
import { decodeBase64 } from '../../src/audio/base64.js';
import { decodeBase64Audio, decodeInputAudio, DEFAULT_AUDIO_LIMITS } from '../../src/audio/decode-input.js';
import { resample, StreamResampler } from '../../src/audio/resample.js';
import { concatFloat32, float32ToPcm16, pcm16ToFloat32 } from '../../src/audio/pcm.js';
import { decodeWav, encodeWav } from '../../src/audio/wav.js';
import { InvalidInputError } from '../../src/errors.js';
import { run, synth, wavOf } from '../fixtures/speech.js';

const rms = (x: Float32Array) => Math.sqrt(x.reduce((sum, v) => sum + v * v, 0) / x.length);
const sine = (hz: number, rate: number, seconds: number, amplitude = 0.5) =>
  Float32Array.from({ length: Math.round(rate * seconds) }, (_, i) => amplitude * Math.sin((2 * Math.PI * hz * i) / rate));

/** Goertzel power of one frequency, normalised: about amplitude^2/4 for a pure tone. */
function toneAmplitude(x: Float32Array, hz: number, rate: number): number {
  let re = 0;
  let im = 0;
  for (let i = 0; i < x.length; i++) {
    re += x[i]! * Math.cos((2 * Math.PI * hz * i) / rate);
    im -= x[i]! * Math.sin((2 * Math.PI * hz * i) / rate);
  }
  return (2 * Math.sqrt(re * re + im * im)) / x.length;
}

describe('WAV decoding', () => {
  it('round-trips PCM16 through encodeWav and decodeWav', () => {
    const pcm = float32ToPcm16(sine(440, 16_000, 0.1));
    const decoded = decodeWav(encodeWav(pcm, 16_000));
    expect(decoded.sampleRate).toBe(16_000);
    expect(float32ToPcm16(decoded.channels[0]!)).toEqual(pcm);
  });

  it.each([
    ['8-bit unsigned', ['-b', '8', '-e', 'unsigned-integer'], 1 / 64],
    ['24-bit', ['-b', '24'], 1e-4],
    ['32-bit', ['-b', '32'], 1e-4],
    ['float32', ['-b', '32', '-e', 'floating-point'], 1e-4],
  ])('decodes %s PCM like 16-bit', async (_name, encoding, tolerance) => {
    const reference = await synth(['synth', '0.2', 'sine', '300', 'vol', '0.5']);
    const wav = await run('sox', ['-n', '-r', '16000', '-c', '1', ...(encoding as string[]), '-t', 'wav', '-', 'synth', '0.2', 'sine', '300', 'vol', '0.5']);
    const decoded = decodeWav(wav).channels[0]!;
    expect(decoded.length).toBe(reference.length);
    let worst = 0;
    for (let i = 0; i < decoded.length; i++) worst = Math.max(worst, Math.abs(decoded[i]! - reference[i]!));
    expect(worst).toBeLessThan(tolerance as number);
  });

  it('decodes WAVE_FORMAT_EXTENSIBLE stereo', async () => {
    const wav = await run('sox', ['-n', '-r', '48000', '-c', '2', '-b', '24', '-t', 'wavpcm', '-', 'synth', '0.1', 'sine', '300']);
    const extensible = await run('sox', ['-t', 'wav', '-', '-t', 'wav', '-e', 'signed-integer', '-b', '24', '-'], wav);
    const decoded = decodeWav(extensible);
    expect(decoded.channels).toHaveLength(2);
    expect(decoded.sampleRate).toBe(48_000);
  });
});

describe('bad audio is refused with a clear error', () => {
  const decode = (bytes: Uint8Array, limits = DEFAULT_AUDIO_LIMITS) => decodeInputAudio(bytes, { format: 'wav' }, limits);

  it('not a WAV', async () => {
    await expect(decode(Buffer.from('ID3\u0003 this is an mp3 file, honest'))).rejects.toThrow(/not a WAV file/);
  });

  it('truncated WAV', async () => {
    const wav = wavOf(sine(440, 16_000, 0.5), 16_000);
    await expect(decode(wav.subarray(0, wav.length / 2))).rejects.toThrow(/truncated WAV: the data chunk declares 16000 bytes but only 7978 are present/);
    await expect(decode(wav.subarray(0, 30))).rejects.toThrow(/truncated WAV/);
  });

  it('compressed encodings, by name', async () => {
    const adpcm = await run('sox', ['-n', '-r', '16000', '-c', '1', '-e', 'ima-adpcm', '-t', 'wav', '-', 'synth', '0.2', 'sine', '300']);
    await expect(decode(adpcm)).rejects.toThrow(/unsupported WAV encoding: format 0x0011 \(IMA ADPCM/);
    const ulaw = await run('sox', ['-n', '-r', '8000', '-c', '1', '-e', 'u-law', '-t', 'wav', '-', 'synth', '0.2', 'sine', '300']);
    await expect(decode(ulaw)).rejects.toThrow(/mu-law/);
  });

  it('zero-length input and a WAV without samples', async () => {
    await expect(decode(new Uint8Array(0))).rejects.toThrow('audio is empty (0 bytes)');
    await expect(decode(encodeWav(new Int16Array(0), 16_000))).rejects.toThrow('the WAV holds no audio samples');
  });

  it('NaN samples in a float WAV', async () => {
    const wav = await run('sox', ['-n', '-r', '16000', '-c', '1', '-b', '32', '-e', 'floating-point', '-t', 'wav', '-', 'synth', '0.1', 'sine', '300']);
    const dataStart = wav.indexOf('data') + 8;
    wav.writeFloatLE(Number.NaN, dataStart + 4 * 10);
    await expect(decode(wav)).rejects.toThrow('audio holds a non-finite sample (NaN) at sample 10');
  });

  it('audio longer than the configured limit', async () => {
    const wav = wavOf(sine(440, 16_000, 3), 16_000);
    await expect(decode(wav, { ...DEFAULT_AUDIO_LIMITS, maxInputMs: 2_000 })).rejects.toThrow('audio is 3.0 s long, over the limit of 2 s');
  });

  it('an unsupported sample rate', async () => {
    await expect(decode(encodeWav(new Int16Array(100), 96_000))).rejects.toThrow(/sample rate 96000 Hz/);
  });

  it('invalid base64, and raw PCM16 with an odd byte count', async () => {
    expect(() => decodeBase64('not base64!!', 'audio')).toThrow('audio: is not valid base64');
    await expect(decodeBase64Audio('AAEC', { format: 'pcm16', sampleRate: 16_000 }, DEFAULT_AUDIO_LIMITS)).rejects.toThrow(/even number of bytes/);
    await expect(decodeBase64Audio('', { format: 'wav' }, DEFAULT_AUDIO_LIMITS)).rejects.toThrow(InvalidInputError);
  });
});

describe('raw PCM16 input', () => {
  it('decodes base64 PCM16 at 24 kHz to 16 kHz', async () => {
    const pcm = float32ToPcm16(sine(300, 24_000, 0.5));
    const audio = await decodeBase64Audio(Buffer.from(pcm.buffer).toString('base64'), { format: 'pcm16', sampleRate: 24_000 }, DEFAULT_AUDIO_LIMITS);
    expect(audio.samples.length).toBe(8000);
    expect(audio.durationMs).toBeCloseTo(500);
    expect(toneAmplitude(audio.samples.subarray(1000, 7000), 300, 16_000)).toBeCloseTo(0.5, 1);
  });
});

describe('resampling', () => {
  it('keeps a speech-band tone and gives the exact output length', async () => {
    const out = await resample(sine(1000, 44_100, 1), 44_100, 16_000);
    expect(out.length).toBe(16_000);
    expect(toneAmplitude(out.subarray(2000, 14000), 1000, 16_000)).toBeGreaterThan(0.48);
  });

  it('removes content above the new Nyquist frequency instead of aliasing it', async () => {
    // A 10 kHz tone cannot exist at 16 kHz; linear interpolation would fold it to 6 kHz.
    const out = await resample(sine(10_000, 44_100, 1), 44_100, 16_000);
    expect(rms(out.subarray(2000, 14000))).toBeLessThan(0.005);
  });

  it('streams chunk by chunk with the same result as one call', async () => {
    const input = sine(440, 24_000, 1);
    const whole = await resample(input, 24_000, 16_000, 'fastest');
    const stream = await StreamResampler.create(24_000, 16_000, 'fastest');
    const parts: Float32Array[] = [];
    for (let i = 0; i < input.length; i += 3200) parts.push(stream.process(input.subarray(i, i + 3200)));
    parts.push(stream.flush());
    stream.dispose();
    const streamed = concatFloat32(parts);
    expect(streamed.length).toBe(whole.length);
    for (let i = 0; i < whole.length; i += 97) expect(streamed[i]).toBeCloseTo(whole[i]!, 4);
  });

  it('pcm16 <-> float32 conversion clamps and round-trips', () => {
    const pcm = Int16Array.from([-32768, -1, 0, 1, 32767]);
    expect(float32ToPcm16(pcm16ToFloat32(pcm))).toEqual(Int16Array.from([-32768, -1, 0, 1, 32767]));
    expect(float32ToPcm16(Float32Array.from([2, -2]))).toEqual(Int16Array.from([32767, -32768]));
  });
});
