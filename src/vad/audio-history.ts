/**
 * The endpointer's recent audio at 16 kHz, addressed by absolute sample position: frames are appended as
 * they are read, and the oldest samples are dropped while no utterance needs them, so memory stays at the
 * pre-roll between turns and grows (doubling) only with the utterance in progress.
 */
export class AudioHistory {
  #samples: Float32Array;
  #length = 0;
  /** Absolute position of `#samples[0]`. */
  #start = 0;

  constructor(initialSamples: number) {
    this.#samples = new Float32Array(initialSamples);
  }

  append(frame: Float32Array): void {
    if (this.#length + frame.length > this.#samples.length) {
      const grown = new Float32Array(Math.max(this.#samples.length * 2, this.#length + frame.length));
      grown.set(this.#samples.subarray(0, this.#length));
      this.#samples = grown;
    }
    this.#samples.set(frame, this.#length);
    this.#length += frame.length;
  }

  /** Keeps about the last `keep` samples (trimmed once twice that has built up, so copies stay rare). */
  keepLast(keep: number): void {
    if (this.#length <= keep * 2) return;
    const drop = this.#length - keep;
    this.#samples.copyWithin(0, drop, this.#length);
    this.#length = keep;
    this.#start += drop;
  }

  /** A copy of the audio from absolute sample `from` (clamped to what is kept) up to `to`. */
  slice(from: number, to: number): Float32Array {
    return this.#samples.slice(Math.max(from, this.#start) - this.#start, to - this.#start);
  }
}
