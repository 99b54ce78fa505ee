/**
 * Sends a response's audio at the speed it plays, keeping only `leadMs` ahead of the listener, so
 * that a barge-in can stop it at once: what has not been sent can still be held back or dropped.
 * Times are wall-clock; the client is assumed to play what it gets without gaps.
 */
export interface PacerOptions {
  sampleRate: number;
  /** How much audio may be sent ahead of playback. */
  leadMs: number;
}

export class OutputPacer {
  readonly #send: (pcm: Int16Array) => void;
  readonly #options: PacerOptions;
  readonly #queue: Int16Array[] = [];
  /** performance.now() at which the audio sent so far will have finished playing. */
  #playbackEndsAt = 0;
  #pausedRemainingMs: number | null = null;
  #timer: NodeJS.Timeout | null = null;
  #drainedWaiters: (() => void)[] = [];
  #sentSamples = 0;

  constructor(send: (pcm: Int16Array) => void, options: PacerOptions) {
    this.#send = send;
    this.#options = options;
  }

  get sentSamples(): number {
    return this.#sentSamples;
  }

  /** Audio is queued or still playing at the listener. */
  get speaking(): boolean {
    return this.#queue.length > 0 || this.#pausedRemainingMs !== null || this.#playbackEndsAt > performance.now();
  }

  /** Audio sent but not yet played at the listener (what a cut takes back from what was heard). */
  get unplayedMs(): number {
    return this.#pausedRemainingMs ?? Math.max(0, this.#playbackEndsAt - performance.now());
  }

  get paused(): boolean {
    return this.#pausedRemainingMs !== null;
  }

  enqueue(pcm: Int16Array): void {
    this.#queue.push(pcm);
    this.#pump();
  }

  /** Stops sending; the listener's buffered audio is expected to pause too. */
  pause(): void {
    if (this.#pausedRemainingMs !== null) return;
    this.#pausedRemainingMs = Math.max(0, this.#playbackEndsAt - performance.now());
    this.#clearTimer();
  }

  resume(): void {
    if (this.#pausedRemainingMs === null) return;
    this.#playbackEndsAt = performance.now() + this.#pausedRemainingMs;
    this.#pausedRemainingMs = null;
    this.#pump();
  }

  /** Drops everything not yet sent (an interrupted answer). */
  flush(): void {
    this.#queue.length = 0;
    this.#pausedRemainingMs = null;
    this.#playbackEndsAt = performance.now();
    this.#clearTimer();
    this.#notifyDrained();
  }

  /** Resolves when everything queued has been sent (or flushed). */
  drained(): Promise<void> {
    if (this.#queue.length === 0 && this.#pausedRemainingMs === null) return Promise.resolve();
    return new Promise((resolve) => this.#drainedWaiters.push(resolve));
  }

  dispose(): void {
    this.flush();
  }

  #pump(): void {
    if (this.#pausedRemainingMs !== null || this.#timer) return;
    const now = performance.now();
    this.#playbackEndsAt = Math.max(this.#playbackEndsAt, now);
    while (this.#queue.length > 0 && this.#playbackEndsAt - now <= this.#options.leadMs) {
      const pcm = this.#queue.shift()!;
      this.#send(pcm);
      this.#sentSamples += pcm.length;
      this.#playbackEndsAt += (pcm.length / this.#options.sampleRate) * 1000;
    }
    if (this.#queue.length > 0) {
      const wait = Math.max(1, this.#playbackEndsAt - this.#options.leadMs - now);
      this.#timer = setTimeout(() => {
        this.#timer = null;
        this.#pump();
      }, wait);
    } else {
      this.#notifyDrained();
    }
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #notifyDrained(): void {
    if (this.#queue.length > 0 || this.#pausedRemainingMs !== null) return;
    for (const resolve of this.#drainedWaiters.splice(0)) resolve();
  }
}
