/**
 * Bridges a push-style producer (native callbacks) to an AsyncIterable consumer. `end()` finishes
 * the stream, `fail(error)` makes the consumer's next read throw. When the consumer stops early
 * (break/return), `onCancel` runs so the producer can stop.
 */
export class AsyncQueue<T> implements AsyncIterable<T> {
  readonly #items: T[] = [];
  #waiting: ((result: IteratorResult<T>) => void) | null = null;
  #waitingReject: ((error: unknown) => void) | null = null;
  #ended = false;
  #error: unknown = null;
  readonly #onCancel: (() => void) | undefined;

  constructor(onCancel?: () => void) {
    this.#onCancel = onCancel;
  }

  push(item: T): void {
    if (this.#ended) return;
    if (this.#waiting) {
      const resolve = this.#waiting;
      this.#waiting = this.#waitingReject = null;
      resolve({ value: item, done: false });
    } else {
      this.#items.push(item);
    }
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#waiting) {
      const resolve = this.#waiting;
      this.#waiting = this.#waitingReject = null;
      resolve({ value: undefined, done: true });
    }
  }

  /** Ends the stream now: items not yet read are dropped (a cancelled producer's output is not wanted). */
  discard(): void {
    this.#items.length = 0;
    this.end();
  }

  fail(error: unknown): void {
    if (this.#ended) return;
    this.#error = error ?? new Error('stream failed');
    this.#ended = true;
    if (this.#waitingReject) {
      const reject = this.#waitingReject;
      this.#waiting = this.#waitingReject = null;
      reject(this.#error);
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (this.#items.length > 0) return Promise.resolve({ value: this.#items.shift()!, done: false });
        if (this.#error !== null) return Promise.reject(this.#error);
        if (this.#ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => {
          this.#waiting = resolve;
          this.#waitingReject = reject;
        });
      },
      return: () => {
        if (!this.#ended) this.#onCancel?.();
        this.#ended = true;
        this.#items.length = 0;
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
