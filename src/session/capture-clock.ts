/**
 * When was a sample captured at the client? Clients send frames as they capture them, so a frame's
 * last sample was captured about when the frame arrived; a sample `n` samples before the end of its
 * frame was captured n / rate earlier. Live metrics count from there, so the client's frame size
 * (the wait for a frame to fill) shows in them.
 */
/** Frames remembered: enough for the longest utterance at the smallest frames. */
const MAX_FRAMES = 8_192;

export class CaptureClock {
  /** Input samples per second. */
  readonly #rate: number;
  /** Per frame: the stream position just after its last sample, and when it arrived. */
  readonly #ends: number[] = [];
  readonly #arrivals: number[] = [];
  #received = 0;

  constructor(sampleRate: number) {
    this.#rate = sampleRate;
  }

  /** A frame of `samples` arrived (call in arrival order). */
  arrived(samples: number, at = performance.now()): void {
    this.#received += samples;
    this.#ends.push(this.#received);
    this.#arrivals.push(at);
    if (this.#ends.length > MAX_FRAMES) {
      this.#ends.splice(0, MAX_FRAMES / 2);
      this.#arrivals.splice(0, MAX_FRAMES / 2);
    }
  }

  /**
   * performance.now() estimate of when the audio up to stream position `position` had been captured:
   * the arrival of the frame holding sample `position - 1`, minus the audio after it in that frame.
   */
  captureTimeOf(position: number): number {
    const ends = this.#ends;
    if (ends.length === 0) return performance.now();
    // The first frame that ends at or after `position` (binary search; positions only grow).
    let lo = 0;
    let hi = ends.length - 1;
    if (position > ends[hi]!) return this.#arrivals[hi]!;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (ends[mid]! >= position) hi = mid;
      else lo = mid + 1;
    }
    return this.#arrivals[lo]! - ((ends[lo]! - position) / this.#rate) * 1000;
  }
}
