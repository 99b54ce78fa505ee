/**
 * Whisper log-mel features as Smart Turn v3 takes them: the last 8 s of a turn at 16 kHz (shorter
 * audio zero-padded at the front), normalised to zero mean and unit variance over the whole window,
 * then an 80-bin Slaney mel power spectrogram (400-sample periodic Hann window, hop 160, centred with
 * reflect padding), log10 with a floor of 1e-10, clamped to 8 below its maximum and mapped with
 * (x + 4) / 4. This is what transformers' WhisperFeatureExtractor(chunk_length=8) computes with
 * do_normalize=True (checked against it in test/turn/whisper-features.test.ts).
 *
 * Pure computation, no I/O: it runs in the turn model's worker thread.
 */

export const TURN_SAMPLE_RATE = 16_000;
export const WINDOW_SECONDS = 8;
export const WINDOW_SAMPLES = WINDOW_SECONDS * TURN_SAMPLE_RATE;
export const N_MELS = 80;
export const N_FRAMES = WINDOW_SAMPLES / 160;
const N_FFT = 400;
const HOP = 160;
const N_BINS = N_FFT / 2 + 1;
const MEL_FLOOR = 1e-10;
const VARIANCE_EPSILON = 1e-7;

/** The model's window: the last 8 s of `audio`, zero-padded at the front when shorter. */
export function turnWindow(audio: Float32Array): Float32Array {
  if (audio.length >= WINDOW_SAMPLES) return audio.slice(audio.length - WINDOW_SAMPLES);
  const window = new Float32Array(WINDOW_SAMPLES);
  window.set(audio, WINDOW_SAMPLES - audio.length);
  return window;
}

// Slaney mel scale (linear below 1 kHz, logarithmic above), as librosa and transformers define it.
const hzToMel = (hz: number) => (hz < 1000 ? (3 * hz) / 200 : 15 + Math.log(hz / 1000) * (27 / Math.log(6.4)));
const melToHz = (mel: number) => (mel < 15 ? (200 * mel) / 3 : 1000 * Math.exp((Math.log(6.4) / 27) * (mel - 15)));

interface MelFilter {
  first: number;
  weights: Float64Array;
}

/** Triangular filters with Slaney area normalisation, kept sparse (each covers a few bins). */
function melFilters(): MelFilter[] {
  const melMax = hzToMel(TURN_SAMPLE_RATE / 2);
  const edges = Array.from({ length: N_MELS + 2 }, (_, i) => melToHz((melMax * i) / (N_MELS + 1)));
  const binHz = Array.from({ length: N_BINS }, (_, k) => (k * (TURN_SAMPLE_RATE / 2)) / (N_BINS - 1));
  const filters: MelFilter[] = [];
  for (let m = 0; m < N_MELS; m++) {
    const [lo, centre, hi] = [edges[m]!, edges[m + 1]!, edges[m + 2]!];
    const norm = 2 / (hi - lo);
    const dense = binHz.map((f) => Math.max(0, Math.min((f - lo) / (centre - lo), (hi - f) / (hi - centre))) * norm);
    const first = dense.findIndex((w) => w > 0);
    const last = dense.findLastIndex((w) => w > 0);
    filters.push(first < 0 ? { first: 0, weights: new Float64Array(0) } : { first, weights: Float64Array.from(dense.slice(first, last + 1)) });
  }
  return filters;
}

/** A mixed-radix FFT of one fixed size (here 400 = 4 * 4 * 5 * 5), in place on preallocated arrays. */
class Fft {
  readonly #n: number;
  readonly #factors: number[];
  readonly #cos: Float64Array;
  readonly #sin: Float64Array;
  readonly #tmpRe = new Float64Array(8);
  readonly #tmpIm = new Float64Array(8);

  constructor(n: number) {
    this.#n = n;
    this.#factors = [];
    for (let rest = n; rest > 1; ) {
      const radix = [4, 5, 3, 2].find((r) => rest % r === 0);
      if (radix === undefined) throw new RangeError(`FFT size ${n} has a prime factor above 5`);
      this.#factors.push(radix);
      rest /= radix;
    }
    this.#cos = Float64Array.from({ length: n }, (_, k) => Math.cos((2 * Math.PI * k) / n));
    this.#sin = Float64Array.from({ length: n }, (_, k) => -Math.sin((2 * Math.PI * k) / n));
  }

  /** The DFT of the real `input` into `re`/`im` (length n each). */
  transform(input: Float64Array, re: Float64Array, im: Float64Array): void {
    this.#step(input, 0, 1, this.#n, re, im, 0, 0);
  }

  #step(input: Float64Array, inOffset: number, stride: number, n: number, re: Float64Array, im: Float64Array, outOffset: number, level: number): void {
    if (n === 1) {
      re[outOffset] = input[inOffset]!;
      im[outOffset] = 0;
      return;
    }
    const radix = this.#factors[level]!;
    const m = n / radix;
    for (let j = 0; j < radix; j++) this.#step(input, inOffset + j * stride, stride * radix, m, re, im, outOffset + j * m, level + 1);
    // Butterflies: X[k + q m] = sum_j W_n^(j (k + q m)) Y_j[k], with W_n^x = W_N^(x N / n).
    const scale = this.#n / n;
    const tRe = this.#tmpRe;
    const tIm = this.#tmpIm;
    for (let k = 0; k < m; k++) {
      for (let j = 0; j < radix; j++) {
        const at = outOffset + j * m + k;
        const w = (j * k * scale) % this.#n;
        const c = this.#cos[w]!;
        const s = this.#sin[w]!;
        tRe[j] = re[at]! * c - im[at]! * s;
        tIm[j] = re[at]! * s + im[at]! * c;
      }
      for (let q = 0; q < radix; q++) {
        let sumRe = 0;
        let sumIm = 0;
        for (let j = 0; j < radix; j++) {
          const w = (((j * q * m) % n) * scale) % this.#n;
          const c = this.#cos[w]!;
          const s = this.#sin[w]!;
          sumRe += tRe[j]! * c - tIm[j]! * s;
          sumIm += tRe[j]! * s + tIm[j]! * c;
        }
        re[outOffset + k + q * m] = sumRe;
        im[outOffset + k + q * m] = sumIm;
      }
    }
  }
}

export class WhisperFeatures {
  readonly #fft = new Fft(N_FFT);
  readonly #filters = melFilters();
  readonly #hann = Float64Array.from({ length: N_FFT }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / N_FFT));
  readonly #frame = new Float64Array(N_FFT);
  readonly #re = new Float64Array(N_FFT);
  readonly #im = new Float64Array(N_FFT);
  readonly #power = new Float64Array(N_BINS);

  /**
   * Features of exactly 8 s of 16 kHz audio (see `turnWindow`): float32 [80 x 800], mel-major
   * (the model's input_features [1, 80, 800]).
   */
  compute(window: Float32Array): Float32Array {
    if (window.length !== WINDOW_SAMPLES) throw new RangeError(`Whisper features need ${WINDOW_SAMPLES} samples, got ${window.length}`);
    const x = normalise(window);
    // Frames lying wholly inside the leading zero padding are all the same (a constant after
    // normalisation): computed once. Where the padding ends: the first non-zero sample.
    let firstSound = window.findIndex((v) => v !== 0);
    if (firstSound < 0) firstSound = WINDOW_SAMPLES;
    const logMel = new Float64Array(N_MELS * N_FRAMES);
    let constantFrame: Float64Array | null = null;
    let max = -Infinity;
    // N_FRAMES + 1 frames exist (centred framing); the last is dropped, as Whisper does.
    for (let t = 0; t < N_FRAMES; t++) {
      const start = t * HOP - N_FFT / 2;
      const inPadding = start + N_FFT <= firstSound;
      let column: Float64Array;
      if (inPadding && constantFrame) column = constantFrame;
      else {
        column = this.#melColumn(x, start);
        if (inPadding) constantFrame = column;
      }
      for (let m = 0; m < N_MELS; m++) {
        const v = column[m]!;
        logMel[m * N_FRAMES + t] = v;
        if (v > max) max = v;
      }
    }
    const out = new Float32Array(N_MELS * N_FRAMES);
    const floor = max - 8;
    for (let i = 0; i < out.length; i++) out[i] = (Math.max(logMel[i]!, floor) + 4) / 4;
    return out;
  }

  /** log10 mel power of the frame starting at `start` (may reach past either end: reflected). */
  #melColumn(x: Float32Array, start: number): Float64Array {
    const last = x.length - 1;
    for (let i = 0; i < N_FFT; i++) {
      let at = start + i;
      if (at < 0) at = -at;
      else if (at > last) at = 2 * last - at;
      this.#frame[i] = x[at]! * this.#hann[i]!;
    }
    this.#fft.transform(this.#frame, this.#re, this.#im);
    for (let k = 0; k < N_BINS; k++) this.#power[k] = this.#re[k]! * this.#re[k]! + this.#im[k]! * this.#im[k]!;
    const column = new Float64Array(N_MELS);
    for (let m = 0; m < N_MELS; m++) {
      const { first, weights } = this.#filters[m]!;
      let sum = 0;
      for (let i = 0; i < weights.length; i++) sum += weights[i]! * this.#power[first + i]!;
      column[m] = Math.log10(Math.max(MEL_FLOOR, sum));
    }
    return column;
  }
}

/** Zero mean, unit variance over the whole window (float32 out, as the reference keeps it). */
function normalise(window: Float32Array): Float32Array {
  let sum = 0;
  for (const v of window) sum += v;
  const mean = sum / window.length;
  let squares = 0;
  for (const v of window) squares += (v - mean) * (v - mean);
  const scale = 1 / Math.sqrt(squares / window.length + VARIANCE_EPSILON);
  const out = new Float32Array(window.length);
  for (let i = 0; i < window.length; i++) out[i] = (window[i]! - mean) * scale;
  return out;
}
