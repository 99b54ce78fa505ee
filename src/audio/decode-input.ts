/**
 * Turns a job's audio (base64 WAV of any common rate and width, mono or stereo, or raw PCM16) into
 * 16 kHz mono float32, the pipeline's input format. Every problem is an InvalidInputError naming it.
 */
import { InvalidInputError } from '../errors.js';
import { decodeBase64 } from './base64.js';
import { assertFinite, bytesToPcm16, downmix, pcm16ToFloat32 } from './pcm.js';
import { resample } from './resample.js';
import { decodeWav } from './wav.js';

export const PIPELINE_SAMPLE_RATE = 16_000;

export interface AudioLimits {
  /** Longest input accepted, in ms of audio. */
  maxInputMs: number;
  /** Largest decoded input accepted, in bytes. */
  maxInputBytes: number;
}

export const DEFAULT_AUDIO_LIMITS: AudioLimits = { maxInputMs: 120_000, maxInputBytes: 25 * 1024 * 1024 };

export type AudioEncoding = { format: 'wav' } | { format: 'pcm16'; sampleRate: number };

export interface InputAudio {
  /** 16 kHz mono float32. */
  samples: Float32Array;
  /** The rate the audio arrived at, before conversion. */
  sourceSampleRate: number;
  durationMs: number;
}

export async function decodeInputAudio(bytes: Uint8Array, encoding: AudioEncoding, limits: AudioLimits): Promise<InputAudio> {
  if (bytes.byteLength === 0) throw new InvalidInputError('audio is empty (0 bytes)');
  if (bytes.byteLength > limits.maxInputBytes) {
    throw new InvalidInputError(`audio is ${bytes.byteLength} bytes, over the limit of ${limits.maxInputBytes} bytes`);
  }
  let mono: Float32Array;
  let sampleRate: number;
  if (encoding.format === 'pcm16') {
    sampleRate = encoding.sampleRate;
    mono = pcm16ToFloat32(bytesToPcm16(bytes));
  } else {
    const wav = decodeWav(bytes);
    sampleRate = wav.sampleRate;
    mono = downmix(wav.channels);
  }
  if (mono.length === 0) throw new InvalidInputError('audio holds no samples');
  const durationMs = (mono.length / sampleRate) * 1000;
  if (durationMs > limits.maxInputMs) {
    throw new InvalidInputError(`audio is ${(durationMs / 1000).toFixed(1)} s long, over the limit of ${limits.maxInputMs / 1000} s`);
  }
  assertFinite(mono);
  const samples = await resample(mono, sampleRate, PIPELINE_SAMPLE_RATE);
  return { samples, sourceSampleRate: sampleRate, durationMs };
}

/** Decodes the base64 `audio` field of a job, then the audio. */
export async function decodeBase64Audio(base64: string, encoding: AudioEncoding, limits: AudioLimits, field = 'audio'): Promise<InputAudio> {
  return decodeInputAudio(decodeBase64(base64, field), encoding, limits);
}
