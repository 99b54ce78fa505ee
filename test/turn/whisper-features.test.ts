import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { N_FRAMES, N_MELS, WINDOW_SAMPLES, WhisperFeatures, turnWindow } from '../../src/turn/whisper-features.js';

interface FixtureCase {
  name: string;
  seconds: number;
  seed: number;
  every_40th_frame: Record<string, number[]>;
  frame_means: number[];
}

const fixture = JSON.parse(readFileSync(new URL('../fixtures/whisper-features/fixture.json', import.meta.url), 'utf8')) as { cases: FixtureCase[] };

/** The reference script's signal() (make_fixture.py): tones, a chirp and MINSTD noise, as float32. */
function signal(seconds: number, seed: number): Float32Array {
  const n = Math.round(seconds * 16_000);
  const out = new Float32Array(n);
  let state = seed;
  for (let i = 0; i < n; i++) {
    state = (state * 48271) % 2147483647;
    const noise = state / 2147483647 - 0.5;
    const t = i / 16_000;
    const value = 0.3 * Math.sin(2 * Math.PI * 220 * t) + 0.2 * Math.sin(2 * Math.PI * (300 + 400 * t) * t) + 0.1 * noise;
    out[i] = value * (0.5 + 0.5 * Math.sin(2 * Math.PI * 1.5 * t));
  }
  return out;
}

describe('Whisper log-mel features for Smart Turn', () => {
  const features = new WhisperFeatures();

  for (const reference of fixture.cases) {
    it(`match transformers' WhisperFeatureExtractor on ${reference.name}`, () => {
      const out = features.compute(turnWindow(signal(reference.seconds, reference.seed)));
      expect(out.length).toBe(N_MELS * N_FRAMES);
      let worst = 0;
      for (const [frame, column] of Object.entries(reference.every_40th_frame)) {
        column.forEach((expected, mel) => (worst = Math.max(worst, Math.abs(out[mel * N_FRAMES + Number(frame)]! - expected))));
      }
      reference.frame_means.forEach((expected, frame) => {
        let sum = 0;
        for (let mel = 0; mel < N_MELS; mel++) sum += out[mel * N_FRAMES + frame]!;
        worst = Math.max(worst, Math.abs(sum / N_MELS - expected));
      });
      // The reference is rounded to 6 decimals (measured worst difference here: about 1e-6).
      expect(worst).toBeLessThan(1e-5);
    });
  }

  it('keeps the last 8 s of a long turn and pads a short one at the front', () => {
    const long = Float32Array.from({ length: WINDOW_SAMPLES + 5 }, (_, i) => i);
    expect(turnWindow(long)[0]).toBe(5);
    const short = turnWindow(Float32Array.of(1, 2));
    expect(short.length).toBe(WINDOW_SAMPLES);
    expect([short[0], short[WINDOW_SAMPLES - 2], short[WINDOW_SAMPLES - 1]]).toEqual([0, 1, 2]);
  });

  it('gives finite features for silence and for clipped audio', () => {
    const silent = features.compute(turnWindow(new Float32Array(16_000)));
    expect(new Set(silent)).toEqual(new Set([-1.5]));
    const clipped = features.compute(turnWindow(Float32Array.from({ length: 32_000 }, (_, i) => (i % 40 < 20 ? 1 : -1))));
    expect(clipped.every(Number.isFinite)).toBe(true);
  });

  it('rejects a window of the wrong length', () => {
    expect(() => features.compute(new Float32Array(100))).toThrow(/128000 samples/);
  });
});
