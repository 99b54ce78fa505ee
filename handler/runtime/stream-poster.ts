/**
 * Posts one job's stream events to the platform strictly in order, one request in flight, without
 * blocking the handler: `push` returns at once unless too many events wait (backpressure). Each event
 * arrives as the JSON text of its post body, `{"output": ...}`.
 * After `discard()` (job stopped) nothing more is posted.
 */
import type { PlatformClient } from './platform-client.js';

const HIGH_WATER = 256;

export class StreamPoster {
  readonly #client: PlatformClient;
  readonly #url: string;
  readonly #jobId: string;
  readonly #signal: AbortSignal;
  readonly #queue: string[] = [];
  #pump: Promise<void> | null = null;
  #failure: Error | null = null;
  #discarded = false;
  #drained: (() => void) | null = null;

  constructor(client: PlatformClient, url: string, jobId: string, signal: AbortSignal) {
    this.#client = client;
    this.#url = url;
    this.#jobId = jobId;
    this.#signal = signal;
  }

  /** The first post that failed for good, if any. Later events are not posted. */
  get failure(): Error | null {
    return this.#failure;
  }

  push(body: string): Promise<void> {
    if (this.#discarded || this.#failure) return Promise.resolve();
    this.#queue.push(body);
    this.#pump ??= this.#run();
    if (this.#queue.length < HIGH_WATER) return Promise.resolve();
    return new Promise((resolve) => (this.#drained = resolve));
  }

  /** Resolves when every pushed event has been posted (or posting stopped). */
  async flush(): Promise<void> {
    while (this.#pump) await this.#pump;
  }

  discard(): void {
    this.#discarded = true;
    this.#queue.length = 0;
    this.#release();
  }

  async #run(): Promise<void> {
    try {
      while (this.#queue.length > 0 && !this.#discarded) {
        const body = this.#queue.shift()!;
        if (this.#queue.length < HIGH_WATER / 2) this.#release();
        try {
          await this.#client.postJson(this.#url, body, { jobId: this.#jobId, signal: this.#signal });
        } catch (error) {
          if (this.#discarded) break;
          this.#failure = error as Error;
          this.#queue.length = 0;
        }
      }
    } finally {
      this.#pump = null;
      this.#release();
    }
  }

  #release(): void {
    const drained = this.#drained;
    this.#drained = null;
    drained?.();
  }
}
