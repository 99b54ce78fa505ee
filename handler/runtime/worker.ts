/**
 * The RunPod queue worker (PROTOCOLS.md section 1): takes jobs by long poll, runs the handler,
 * posts every event in order to job-stream and the end to job-done, beats the heartbeat with the
 * ids in progress, listens on job-stop, keeps to the concurrency limit and drains on SIGTERM.
 *
 * Three loops run side by side: take (stops when draining), heartbeat and job-stop (stop when
 * the last job has finished after a drain).
 */
import { S2sError } from '../../src/errors.js';
import { errorMessage, type Logger } from '../../src/log/logger.js';
import { WORKER_VERSION } from '../../src/version.js';
import type { PlatformUrls, WorkerConfig } from '../config.js';
import { sleep, whenAborted } from './abort.js';
import { PlatformClient } from './platform-client.js';
import { StreamPoster } from './stream-poster.js';
import { MAX_STREAM_CHUNK_BYTES, type HandlerDefinition, type WorkerJob } from './types.js';
import { PlatformUrlBuilder } from './urls.js';

/** The platform holds job-take and job-stop open; give up and ask again after this long. */
const LONG_POLL_TIMEOUT_MS = 90_000;
/** An empty answer faster than this means the platform is not long-polling: pause before asking again. */
const FAST_EMPTY_ANSWER_MS = 50;
const EMPTY_ANSWER_PAUSE_MS = 250;
const RATE_LIMITED_PAUSE_MS = 5_000;
const ERROR_BACKOFF_FIRST_MS = 500;
const ERROR_BACKOFF_MAX_MS = 10_000;
/**
 * A drain lets a job-take in flight run this much longer: a job the platform has already handed
 * out in its answer is on its way and must be run, not dropped with the connection. An idle long
 * poll is then given up, so an idle worker still exits at once.
 */
const TAKE_DRAIN_GRACE_MS = 500;

/** Thrown into a handler's signal when the platform stops its job. */
export class JobStoppedError extends S2sError {
  constructor(jobId: string) {
    super('JOB_STOPPED', `job ${jobId} was stopped by the platform`);
  }
}

interface ActiveJob {
  readonly controller: AbortController;
  poster: StreamPoster | null;
  stopped: boolean;
}

/** What job-take delivered, checked: either a job to run or a job to fail at once. */
type TakenJob = { id: string; input: unknown; problem: null } | { id: string; input: undefined; problem: string };

export interface QueueWorkerOptions {
  config: WorkerConfig & { platform: PlatformUrls };
  handler: HandlerDefinition;
  log: Logger;
}

export class QueueWorker {
  readonly #config: QueueWorkerOptions['config'];
  readonly #handler: HandlerDefinition;
  readonly #log: Logger;
  readonly #client: PlatformClient;
  readonly #urls: PlatformUrlBuilder;
  readonly #active = new Map<string, ActiveJob>();
  /** Jobs at once: the handler's own limit (S2S_MAX_CONVERSATIONS for the speech handler). */
  readonly #concurrency: number;
  readonly #takeBatch: number;
  readonly #running = new Set<Promise<void>>();
  /** Fires when SIGTERM (or `drain()`) asks the worker to stop taking jobs. */
  readonly #draining = new AbortController();
  /** Fires when the worker is done: all jobs finished after a drain. */
  readonly #finished = new AbortController();
  #slotFreed: (() => void) | null = null;

  constructor(options: QueueWorkerOptions) {
    this.#config = options.config;
    this.#handler = options.handler;
    this.#log = options.log;
    this.#client = new PlatformClient(options.config.apiKey);
    this.#urls = new PlatformUrlBuilder(options.config.platform, options.config.workerId, options.config.gpuTypeId);
    this.#concurrency = Math.max(1, options.handler.concurrency ?? 1);
    this.#takeBatch = Math.min(options.config.jobTakeBatch, this.#concurrency);
  }

  /** Ids of the jobs in progress, as the heartbeat reports them. */
  get jobsInProgress(): string[] {
    return [...this.#active.keys()];
  }

  /** Runs until drained and every job in flight has finished. */
  async run(): Promise<void> {
    this.#log.info('worker started', {
      worker_id: this.#config.workerId,
      concurrency: this.#concurrency,
      version: WORKER_VERSION,
    });
    const background = [this.#heartbeatLoop(), this.#stopLoop()];
    await this.#takeLoop();
    while (this.#running.size > 0) await Promise.allSettled([...this.#running]);
    this.#finished.abort();
    await Promise.allSettled(background);
    this.#log.info('worker stopped');
  }

  /** Stops taking jobs; the ones in flight finish and are posted. Safe to call more than once. */
  drain(): void {
    if (this.#draining.signal.aborted) return;
    this.#log.info('draining: no new jobs, finishing jobs in flight', { in_progress: this.jobsInProgress.length });
    this.#draining.abort();
  }

  // ---- taking jobs -------------------------------------------------------------------------

  async #takeLoop(): Promise<void> {
    let backoffMs = ERROR_BACKOFF_FIRST_MS;
    while (!this.#draining.signal.aborted) {
      const free = this.#concurrency - this.#active.size;
      if (free <= 0) {
        await this.#waitForSlot();
        continue;
      }
      const outcome = await this.#takeJobs(Math.min(free, this.#takeBatch));
      if (outcome === 'error') {
        await sleep(backoffMs, this.#draining.signal);
        backoffMs = Math.min(backoffMs * 2, ERROR_BACKOFF_MAX_MS);
        continue;
      }
      backoffMs = ERROR_BACKOFF_FIRST_MS;
      for (const job of outcome) this.#start(job);
    }
  }

  async #waitForSlot(): Promise<void> {
    const waited = new AbortController();
    try {
      await Promise.race([new Promise<void>((resolve) => (this.#slotFreed = resolve)), whenAborted(this.#draining.signal, waited.signal)]);
    } finally {
      waited.abort();
    }
  }

  async #takeJobs(wanted: number): Promise<TakenJob[] | 'error'> {
    const url = this.#urls.jobTake(this.#active.size > 0, wanted);
    const started = performance.now();
    const timeout = AbortSignal.timeout(LONG_POLL_TIMEOUT_MS);
    const taken = new AbortController();
    const drainedAWhileAgo = new AbortController();
    void whenAborted(this.#draining.signal, taken.signal)
      .then(() => sleep(TAKE_DRAIN_GRACE_MS, taken.signal))
      .then(() => drainedAWhileAgo.abort());
    let response;
    try {
      response = await this.#client.get(url, AbortSignal.any([drainedAWhileAgo.signal, timeout]));
    } catch (error) {
      // Draining, or the long poll ran its course: simply ask again.
      if (this.#draining.signal.aborted || timeout.aborted) return [];
      this.#log.warn('job-take failed', { error: errorMessage(error) });
      return 'error';
    } finally {
      taken.abort();
    }
    if (response.status === 204 || response.status === 400) {
      // No job. 400 is normal with FlashBoot. A real long poll takes a while; an instant answer
      // means none is held, so pause briefly instead of spinning.
      if (performance.now() - started < FAST_EMPTY_ANSWER_MS) await sleep(EMPTY_ANSWER_PAUSE_MS, this.#draining.signal);
      return [];
    }
    if (response.status === 429) {
      this.#log.warn('job-take rate limited, waiting', { wait_ms: RATE_LIMITED_PAUSE_MS });
      await sleep(RATE_LIMITED_PAUSE_MS, this.#draining.signal);
      return [];
    }
    if (response.status !== 200) {
      this.#log.warn('job-take answered an error', { status: response.status, body: response.body.slice(0, 200) });
      return 'error';
    }
    return parseTakenJobs(response.body, wanted > 1, this.#log);
  }

  // ---- running one job ---------------------------------------------------------------------

  #start(taken: TakenJob): void {
    const active: ActiveJob = { controller: new AbortController(), poster: null, stopped: false };
    this.#active.set(taken.id, active);
    const running = this.#runJob(taken, active).finally(() => {
      this.#active.delete(taken.id);
      this.#running.delete(running);
      const slotFreed = this.#slotFreed;
      this.#slotFreed = null;
      slotFreed?.();
    });
    this.#running.add(running);
  }

  async #runJob(taken: TakenJob, active: ActiveJob): Promise<void> {
    const log = this.#log.forJob(taken.id);
    const startedAt = performance.now();
    if (taken.problem !== null) {
      log.error('job rejected', { error: taken.problem });
      await this.#postDone(taken.id, { error: taken.problem }, log, active.controller.signal);
      return;
    }
    log.info('job started', { in_progress: this.#active.size, max: this.#concurrency });
    const signal = active.controller.signal;
    const poster = new StreamPoster(this.#client, this.#urls.jobStream(taken.id), taken.id, signal);
    active.poster = poster;
    const job: WorkerJob = {
      id: taken.id,
      input: taken.input,
      log,
      shutdown: this.#draining.signal,
      progress: (update) =>
        this.#client.post(this.#urls.jobDone(taken.id, false), { status: 'IN_PROGRESS', output: update }, { jobId: taken.id, signal }),
    };
    const aggregate: unknown[] | null = this.#handler.returnAggregateStream ? [] : null;
    let result: { output: unknown } | { error: string };
    try {
      await consumeUntilAborted(this.#handler.handle(job, signal), signal, async (event) => {
        // Serialized once: the size check and the post use the same text.
        const body = JSON.stringify({ output: event });
        const bytes = Buffer.byteLength(body);
        if (bytes > MAX_STREAM_CHUNK_BYTES) {
          throw new S2sError('EVENT_TOO_LARGE', `an event of ${bytes} bytes exceeds RunPod's 1 MB stream chunk limit`);
        }
        aggregate?.push(event);
        await poster.push(body);
        if (poster.failure) throw poster.failure;
      });
      await poster.flush();
      if (poster.failure) throw poster.failure;
      result = { output: aggregate ?? [] };
    } catch (error) {
      if (!active.stopped) {
        // Our own errors carry a clear message; anything else is a bug and needs its stack.
        log.error('job failed', { error: errorMessage(error), ...(error instanceof S2sError ? {} : { stack: (error as Error).stack }) });
        await poster.flush();
      }
      result = { error: errorMessage(error) };
    }
    if (active.stopped) {
      log.info('job stopped by the platform: nothing posted', { ms: Math.round(performance.now() - startedAt) });
      return;
    }
    await this.#postDone(taken.id, result, log, signal);
    if (active.stopped) return;
    log.info('job finished', { ms: Math.round(performance.now() - startedAt), ok: 'output' in result });
  }

  /** Posts the job's end, retrying; a job-stop that arrives meanwhile ends the retries (the platform has let go of the job). */
  async #postDone(jobId: string, body: { output: unknown } | { error: string }, log: Logger, signal: AbortSignal): Promise<void> {
    try {
      await this.#client.post(this.#urls.jobDone(jobId, true), body, { jobId, signal });
    } catch (error) {
      if (signal.aborted) {
        log.info('job stopped by the platform during its final post: nothing more posted');
        return;
      }
      // Retries are exhausted: the platform will time the job out. Nothing else can be done.
      log.error('job-done could not be posted: result lost', { error: errorMessage(error) });
    }
  }

  // ---- stopping jobs -----------------------------------------------------------------------

  /** Stops a job at once: its handler's signal fires and nothing more is posted for it. */
  stopJob(jobId: string): void {
    const active = this.#active.get(jobId);
    if (!active || active.stopped) return;
    active.stopped = true;
    active.poster?.discard();
    active.controller.abort(new JobStoppedError(jobId));
  }

  async #stopLoop(): Promise<void> {
    const url = this.#urls.jobStop();
    while (!this.#finished.signal.aborted) {
      const started = performance.now();
      let response;
      try {
        response = await this.#client.get(url, AbortSignal.any([this.#finished.signal, AbortSignal.timeout(LONG_POLL_TIMEOUT_MS)]));
      } catch {
        await sleep(ERROR_BACKOFF_FIRST_MS, this.#finished.signal);
        continue;
      }
      if (response.status === 200) {
        for (const jobId of parseJobsToStop(response.body)) {
          this.#log.forJob(jobId).info('job-stop received');
          this.stopJob(jobId);
        }
      } else if (response.status !== 204) {
        await sleep(ERROR_BACKOFF_FIRST_MS, this.#finished.signal);
      } else if (performance.now() - started < FAST_EMPTY_ANSWER_MS) {
        await sleep(EMPTY_ANSWER_PAUSE_MS, this.#finished.signal);
      }
    }
  }

  // ---- heartbeat ---------------------------------------------------------------------------

  async #heartbeatLoop(): Promise<void> {
    const interval = this.#config.pingIntervalMs;
    while (!this.#finished.signal.aborted) {
      const url = this.#urls.ping(this.jobsInProgress, WORKER_VERSION);
      if (url === null) return;
      for (let attempt = 1; attempt <= 3 && !this.#finished.signal.aborted; attempt++) {
        try {
          const response = await this.#client.get(url, AbortSignal.any([this.#finished.signal, AbortSignal.timeout(2 * interval)]));
          if (response.status !== 429 && response.status < 500) break;
          this.#log.debug('heartbeat answered an error', { status: response.status });
        } catch (error) {
          this.#log.debug('heartbeat failed', { error: errorMessage(error) });
        }
        await sleep(Math.min(200 * attempt, interval / 4), this.#finished.signal);
      }
      await sleep(interval, this.#finished.signal);
    }
  }
}

/**
 * Feeds each item of `events` to `onEvent` until the stream ends or `signal` fires. On abort it
 * returns at once, even if the handler is stuck inside an await, and closes the iterator behind.
 */
export async function consumeUntilAborted<T>(
  events: AsyncIterable<T>,
  signal: AbortSignal,
  onEvent: (event: T) => Promise<void>,
): Promise<void> {
  const iterator = events[Symbol.asyncIterator]();
  const aborted = whenAborted(signal).then(() => 'aborted' as const);
  let finished = false;
  try {
    while (!signal.aborted) {
      const next = iterator.next();
      const step = await Promise.race([next, aborted]);
      if (step === 'aborted') {
        next.catch(() => undefined);
        return;
      }
      if (step.done) {
        finished = true;
        return;
      }
      await onEvent(step.value);
    }
  } finally {
    if (!finished) void iterator.return?.()?.catch(() => undefined);
  }
}

/** Checks what job-take returned. Bad jobs come back with a problem so the job can be failed. */
export function parseTakenJobs(body: string, batch: boolean, log: Logger): TakenJob[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    // Without valid JSON there is no id to report to, unless one can still be read.
    const id = /"id"\s*:\s*"([^"]+)"/.exec(body)?.[1];
    log.error('job-take returned malformed JSON', { body: body.slice(0, 200), salvaged_id: id ?? null });
    return id ? [{ id, input: undefined, problem: 'the job could not be read: the platform sent malformed JSON' }] : [];
  }
  const items = batch && Array.isArray(parsed) ? parsed : [parsed];
  const jobs: TakenJob[] = [];
  for (const item of items) {
    const record = typeof item === 'object' && item !== null ? (item as Record<string, unknown>) : {};
    const id = record['id'];
    if (typeof id !== 'string' || id.length === 0) {
      log.error('job-take returned a job without an id', { body: JSON.stringify(item).slice(0, 200) });
      continue;
    }
    if (record['input'] === undefined || record['input'] === null) {
      jobs.push({ id, input: undefined, problem: 'the job has no "input": send {"input": {...}}' });
      continue;
    }
    jobs.push({ id, input: record['input'], problem: null });
  }
  return jobs;
}

function parseJobsToStop(body: string): string[] {
  try {
    const parsed = JSON.parse(body) as { jobsToStop?: unknown };
    return Array.isArray(parsed.jobsToStop) ? parsed.jobsToStop.filter((id): id is string => typeof id === 'string') : [];
  } catch {
    return [];
  }
}
