/**
 * A Realtime session's client events, handled strictly in order: most are handled at once; one that
 * takes time (a session.update whose tools compile on the schema thread) returns a promise, and the
 * events after it wait here until it settles. What may wait is bounded in bytes.
 */
export class InboundQueue {
  readonly #handle: (data: Buffer, isBinary: boolean) => Promise<void> | void;
  readonly #maxBytes: number;
  readonly #queue: { data: Buffer; isBinary: boolean }[] = [];
  #bytes = 0;
  #busy = false;

  constructor(handle: (data: Buffer, isBinary: boolean) => Promise<void> | void, maxBytes: number) {
    this.#handle = handle;
    this.#maxBytes = maxBytes;
  }

  /** Handles the event now or after those before it; false (and nothing queued) when it would pass the bound. */
  push(data: Buffer, isBinary: boolean): boolean {
    if (this.#bytes + data.byteLength > this.#maxBytes) return false;
    this.#queue.push({ data, isBinary });
    this.#bytes += data.byteLength;
    this.#drain();
    return true;
  }

  #drain(): void {
    while (!this.#busy && this.#queue.length > 0) {
      const next = this.#queue.shift()!;
      this.#bytes -= next.data.byteLength;
      const pending = this.#handle(next.data, next.isBinary);
      if (pending) {
        this.#busy = true;
        void pending.finally(() => {
          this.#busy = false;
          this.#drain();
        });
      }
    }
  }
}
