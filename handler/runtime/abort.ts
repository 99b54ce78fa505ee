/** Waits `ms`, or less if `signal` fires first. Never rejects. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const onAbort = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * A promise that resolves (never rejects) when `signal` fires, at once if it has. A wait on a
 * long-lived signal (the worker's drain) must pass `until`, which fires when the wait is over and
 * removes the listener; otherwise each wait leaves one behind for the worker's lifetime.
 */
export function whenAborted(signal: AbortSignal, until?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener('abort', () => resolve(), { once: true, signal: until });
  });
}
