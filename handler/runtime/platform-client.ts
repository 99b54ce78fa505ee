/**
 * HTTP calls from the worker to the RunPod platform, with the retry policy in one place:
 * 429, 5xx and network errors are retried with exponential backoff; other 4xx are final.
 * The API key is sent raw in `Authorization` (no `Bearer`), as the platform expects.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { PlatformError } from '../../src/errors.js';

export interface RetryPolicy {
  attempts: number;
  firstDelayMs: number;
  maxDelayMs: number;
}

/** Results must not be lost to a short outage: about 30 s of retries before giving up. */
export const RESULT_RETRY: RetryPolicy = { attempts: 8, firstDelayMs: 100, maxDelayMs: 8_000 };

export interface PlatformResponse {
  status: number;
  body: string;
}

export class PlatformClient {
  readonly #headers: Record<string, string>;

  constructor(apiKey: string | null) {
    this.#headers = apiKey ? { authorization: apiKey } : {};
  }

  /** One GET; resolves with any HTTP status, throws PlatformError on network failure or abort. */
  async get(url: string, signal: AbortSignal): Promise<PlatformResponse> {
    return this.#request('GET', url, undefined, signal, {});
  }

  /**
   * POSTs a JSON body, retrying transient failures. Resolves on 2xx; throws PlatformError
   * when the platform refuses (4xx other than 429) or retries run out.
   */
  async post(url: string, body: unknown, options: { jobId: string; signal?: AbortSignal; retry?: RetryPolicy }): Promise<void> {
    return this.postJson(url, JSON.stringify(body), options);
  }

  /** `post` for a body that is already JSON text (stream chunks are serialized once, to check their size). */
  async postJson(url: string, payload: string, options: { jobId: string; signal?: AbortSignal; retry?: RetryPolicy }): Promise<void> {
    const retry = options.retry ?? RESULT_RETRY;
    // The Python SDK sends this content type with a JSON body; the platform accepts it.
    const headers = { 'content-type': 'application/x-www-form-urlencoded', 'x-request-id': options.jobId };
    let delayMs = retry.firstDelayMs;
    for (let attempt = 1; ; attempt++) {
      let error: PlatformError;
      try {
        const response = await this.#request('POST', url, payload, options.signal, headers);
        if (response.status >= 200 && response.status < 300) return;
        const retryable = response.status === 429 || response.status >= 500;
        error = new PlatformError(`POST answered ${response.status}: ${response.body.slice(0, 200)}`, response.status, {
          retryable,
        });
      } catch (caught) {
        if (!(caught instanceof PlatformError)) throw caught;
        error = caught;
      }
      if (!error.retryable || attempt >= retry.attempts || options.signal?.aborted) throw error;
      await sleep(delayMs, undefined, { signal: options.signal }).catch(() => undefined);
      delayMs = Math.min(delayMs * 2, retry.maxDelayMs);
    }
  }

  async #request(
    method: string,
    url: string,
    body: string | undefined,
    signal: AbortSignal | undefined,
    headers: Record<string, string>,
  ): Promise<PlatformResponse> {
    try {
      const response = await fetch(url, { method, body, signal, headers: { ...this.#headers, ...headers } });
      return { status: response.status, body: await response.text() };
    } catch (cause) {
      if (signal?.aborted) throw new PlatformError(`${method} aborted`, null, { retryable: false, cause });
      throw new PlatformError(`${method} failed: ${(cause as Error).message}`, null, { retryable: true, cause });
    }
  }
}
