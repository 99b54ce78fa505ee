/**
 * Sends a response's audio at the speed it plays, keeping only `leadMs` ahead of the listener, so
 * that a barge-in can stop it at once: what has not been sent can still be held back or dropped.
 * Times are wall-clock; the client is assumed to play what it gets without gaps. A client that
 * does not read (its socket's buffer keeps growing) holds the pacer: nothing more piles up, and a
 * hold that lasts is reported as stuck.
 */
export interface PacerOptions {
  sampleRate: number;
  /** How much audio may be sent ahead of playback. */
  leadMs: number;
  /** False while the client is not taking what was sent (its socket's buffer is full): the pacer holds. */
  canSend?: () => boolean;
  /** A hold this long calls `onStuck` (once). */
  maxHoldMs?: number;
  onStuck?: () => void;
}

/** The shortest piece a chunk is cut into (20 ms, a telephony frame). */
const MIN_PIECE_S = 0.02;

/** While held, how often to look again whether the client has caught up. */
const HOLD_RETRY_MS = 20;

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
  /** performance.now() since when the client has not been taking audio; null when it is. */
  #heldSince: number | null = null;
  #reportedStuck = false;

  constructor(send: (pcm: Int16Array) => void, options: PacerOptions) {
    this.#send = send;
    this.#options = { ...options };
  }

  /** Audio sent ahead of playback from now on. */
  setLeadMs(ms: number): void {
    this.#options.leadMs = ms;
  }

  get sentSamples(): number {
    return this.#sentSamples;
  }

  /** Audio is queued or still playing at the listener. */
  get speaking(): boolean {
    return this.#queue.length > 0 || this.#pausedRemainingMs !== null || this.#playbackEndsAt > performance.now();
  }

  /** Audio waits to be sent (a pause holds it): there is something to resume. */
  get queued(): boolean {
    return this.#queue.length > 0;
  }

  /** Audio sent but not yet played at the listener (what a cut takes back from what was heard). */
  get unplayedMs(): number {
    return this.#pausedRemainingMs ?? Math.max(0, this.#playbackEndsAt - performance.now());
  }

  get paused(): boolean {
    return this.#pausedRemainingMs !== null;
  }

  /**
   * Queues audio. A chunk longer than the lead goes out in pieces of half the lead (20 ms at least):
   * sent whole it could leave only once playback had run dry, and all of it would be heard after a pause.
   */
  enqueue(pcm: Int16Array): void {
    const { sampleRate, leadMs } = this.#options;
    const piece = Math.max(Math.round(sampleRate * MIN_PIECE_S), Math.round((sampleRate * leadMs) / 2000));
    if (this.#chunkMs(pcm) <= leadMs) this.#queue.push(pcm);
    else for (let at = 0; at < pcm.length; at += piece) this.#queue.push(pcm.subarray(at, at + piece));
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
    this.#heldSince = null;
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
    let held = false;
    while (this.#queue.length > 0) {
      const ahead = this.#playbackEndsAt - now;
      // Never more than the lead ahead of playback (a chunk longer than the lead goes alone).
      if (ahead > 0 && ahead + this.#chunkMs(this.#queue[0]!) > this.#options.leadMs) break;
      held = !this.#clientKeepsUp(now);
      if (held) break;
      const pcm = this.#queue.shift()!;
      this.#send(pcm);
      this.#sentSamples += pcm.length;
      this.#playbackEndsAt += this.#chunkMs(pcm);
    }
    if (this.#queue.length > 0) {
      const wait = held ? HOLD_RETRY_MS : Math.max(1, this.#playbackEndsAt + this.#chunkMs(this.#queue[0]!) - this.#options.leadMs - now);
      this.#timer = setTimeout(() => {
        this.#timer = null;
        this.#pump();
      }, wait);
    } else {
      this.#notifyDrained();
    }
  }

  #chunkMs(pcm: Int16Array): number {
    return (pcm.length / this.#options.sampleRate) * 1000;
  }

  #clientKeepsUp(now: number): boolean {
    if (this.#options.canSend?.() ?? true) {
      this.#heldSince = null;
      return true;
    }
    this.#heldSince ??= now;
    if (!this.#reportedStuck && now - this.#heldSince >= (this.#options.maxHoldMs ?? Infinity)) {
      this.#reportedStuck = true;
      this.#options.onStuck?.();
    }
    return false;
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
