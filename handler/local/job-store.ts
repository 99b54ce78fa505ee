/**
 * The local RunPod API's job store: one queue, the platform's job states (IN_QUEUE, IN_PROGRESS and
 * the final ones), each job's timers (TTL, execution timeout, result retention), the workers waiting
 * for jobs or for job-stop, and what has changed for a client waiting on a job. No HTTP here: the
 * router (runpod-api.ts) parses requests, calls the store, and sends what it returns.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../../src/log/logger.js';

export type JobStatus = 'IN_QUEUE' | 'IN_PROGRESS' | 'COMPLETED' | 'FAILED' | 'CANCELLED' | 'TIMED_OUT';
export const FINAL_STATES: ReadonlySet<JobStatus> = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'TIMED_OUT']);

/** What the simulator knows of one job; exposed read-only for tests and debugging. */
export interface SimulatedJob {
  readonly id: string;
  input: unknown;
  status: JobStatus;
  webhook: string | null;
  executionTimeoutMs: number;
  ttlMs: number;
  createdAt: number;
  startedAt: number | null;
  completedAt: number | null;
  workerId: string | null;
  output: unknown;
  error: string | null;
  /** Every stream chunk posted, in order; `streamSent` of them were already returned by `/stream`. */
  stream: unknown[];
  streamSent: number;
  retries: number;
  /**
   * When (epoch ms) each worker post arrived after the job had ended. A worker can have one post in
   * flight when the platform ends a job; after it has heard job-stop it must send none.
   */
  latePosts: number[];
  /** When job-stop for this job was delivered to its worker (epoch ms). */
  stopDeliveredAt: number | null;
}

export interface StoredJob extends SimulatedJob {
  timers: NodeJS.Timeout[];
  changed: Set<() => void>;
}

/** A store operation's refusal, with the HTTP status the router answers it with. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A client connection whose going away ends a wait (an HTTP request's `close`). */
export interface ClientConnection {
  once(event: 'close', listener: () => void): unknown;
  off(event: 'close', listener: () => void): unknown;
}

export interface JobStoreOptions {
  /** How long job-take and job-stop are held open with nothing to say. */
  workerPollHoldMs: number;
  /** How long `/stream` is held open waiting for new chunks. */
  streamHoldMs: number;
  defaultExecutionTimeoutMs: number;
  defaultTtlMs: number;
  /** Finished jobs are forgotten after this long. */
  resultRetentionMs: number;
}

/** A validated `/run` body. */
export interface JobRequest {
  input: unknown;
  webhook?: string | undefined;
  policy?: { executionTimeout?: number | undefined; ttl?: number | undefined } | undefined;
}

const WORKER_SEEN_WINDOW_MS = 60_000;

export class JobStore {
  readonly #options: JobStoreOptions;
  readonly #log: Logger | null;
  readonly #jobs = new Map<string, StoredJob>();
  readonly #queue: StoredJob[] = [];
  readonly #takeWaiters: { workerId: string; wanted: number; deliver: (jobs: StoredJob[]) => void }[] = [];
  readonly #stopsByWorker = new Map<string, Set<string>>();
  readonly #stopWaiters = new Map<string, () => void>();
  readonly #workersSeen = new Map<string, number>();
  /** When each worker first called the API (epoch ms): start-up benchmarks read it. */
  readonly workersFirstSeen = new Map<string, number>();
  /** Worker ids and the job ids their last heartbeat reported. */
  readonly heartbeats = new Map<string, { at: number; jobIds: string[] }>();
  readonly #counts = { completed: 0, failed: 0, retried: 0 };
  #closed = false;

  constructor(options: JobStoreOptions, log: Logger | null) {
    this.#options = options;
    this.#log = log;
  }

  /** A job's record, or undefined when there is none (never was, purged, or forgotten). */
  job(id: string): StoredJob | undefined {
    return this.#jobs.get(id);
  }

  /** The job with this id, or a 404 that says how long results are kept. */
  mustGet(id: string | undefined): StoredJob {
    const job = id ? this.#jobs.get(id) : undefined;
    if (!job) throw new HttpError(404, `no job with id "${id ?? ''}" (results are kept ${this.#options.resultRetentionMs / 60_000} minutes)`);
    return job;
  }

  /** Stops every timer and wakes every waiter: the API is closing. */
  close(): void {
    this.#closed = true;
    for (const job of this.#jobs.values()) job.timers.forEach(clearTimeout);
    for (const waiter of this.#takeWaiters.splice(0)) waiter.deliver([]);
    for (const wake of this.#stopWaiters.values()) wake();
  }

  // ---- client side -------------------------------------------------------------------------

  submit(request: JobRequest): { id: string; status: JobStatus } {
    const job: StoredJob = {
      id: `local-${randomUUID()}`,
      input: request.input,
      status: 'IN_QUEUE',
      webhook: request.webhook ?? null,
      executionTimeoutMs: request.policy?.executionTimeout ?? this.#options.defaultExecutionTimeoutMs,
      ttlMs: request.policy?.ttl ?? this.#options.defaultTtlMs,
      createdAt: Date.now(),
      startedAt: null,
      completedAt: null,
      workerId: null,
      output: undefined,
      error: null,
      stream: [],
      streamSent: 0,
      retries: 0,
      latePosts: [],
      stopDeliveredAt: null,
      timers: [],
      changed: new Set(),
    };
    this.#jobs.set(job.id, job);
    this.#enqueue(job);
    // Answered as queued even when a waiting worker took it in the same instant, as the platform does.
    return { id: job.id, status: 'IN_QUEUE' };
  }

  #enqueue(job: StoredJob): void {
    job.timers.push(setTimeout(() => this.#finish(job, 'TIMED_OUT', { error: 'job TTL expired' }), job.ttlMs - (Date.now() - job.createdAt)));
    this.#queue.push(job);
    this.#dispatch();
  }

  statusOf(job: StoredJob): Record<string, unknown> {
    const now = Date.now();
    return {
      id: job.id,
      status: job.status,
      delayTime: (job.startedAt ?? now) - job.createdAt,
      executionTime: job.startedAt === null ? 0 : (job.completedAt ?? now) - job.startedAt,
      ...(job.workerId ? { workerId: job.workerId } : {}),
      ...(job.retries ? { retries: job.retries } : {}),
      ...(job.output !== undefined ? { output: job.output } : {}),
      ...(job.error !== null ? { error: job.error } : {}),
    };
  }

  /** The job's status once it is final, or after `waitMs`. */
  async waitFinal(id: string, waitMs: number): Promise<Record<string, unknown>> {
    const job = this.mustGet(id);
    await this.#waitForChange(job, waitMs, () => FINAL_STATES.has(job.status));
    return this.statusOf(job);
  }

  /** Stream chunks not returned yet, waiting up to `streamHoldMs` for some (or for the job's end). */
  async streamChunks(job: StoredJob, client: ClientConnection): Promise<Record<string, unknown>> {
    const hasNews = () => job.stream.length > job.streamSent || FINAL_STATES.has(job.status);
    await this.#waitForChange(job, this.#options.streamHoldMs, hasNews, client);
    const chunks = job.stream.slice(job.streamSent).map((output) => ({ output }));
    job.streamSent = job.stream.length;
    return {
      id: job.id,
      status: job.status,
      stream: chunks,
      ...(job.error !== null ? { error: job.error } : {}),
    };
  }

  /** Resolves when `ready()` holds, after `waitMs`, or when the client goes away. */
  #waitForChange(job: StoredJob, waitMs: number, ready: () => boolean, client?: ClientConnection): Promise<void> {
    if (ready() || this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        job.changed.delete(check);
        client?.off('close', done);
        resolve();
      };
      const check = () => {
        if (ready()) done();
      };
      const timer = setTimeout(done, waitMs);
      job.changed.add(check);
      client?.once('close', done);
    });
  }

  cancel(job: StoredJob): Record<string, unknown> {
    if (!FINAL_STATES.has(job.status)) this.#finish(job, 'CANCELLED', {});
    return { id: job.id, status: job.status };
  }

  retry(job: StoredJob): Record<string, unknown> {
    if (job.status !== 'FAILED' && job.status !== 'TIMED_OUT' && job.status !== 'CANCELLED') {
      throw new HttpError(400, `job ${job.id} is ${job.status}: only FAILED, TIMED_OUT or CANCELLED jobs can be retried`);
    }
    job.timers.forEach(clearTimeout);
    Object.assign(job, { status: 'IN_QUEUE', startedAt: null, completedAt: null, workerId: null, output: undefined, error: null });
    Object.assign(job, { stream: [], streamSent: 0, createdAt: Date.now(), retries: job.retries + 1 });
    this.#counts.retried++;
    this.#enqueue(job);
    return { id: job.id, status: 'IN_QUEUE' };
  }

  purgeQueue(): Record<string, unknown> {
    const removed = this.#queue.splice(0);
    for (const job of removed) {
      job.timers.forEach(clearTimeout);
      this.#jobs.delete(job.id);
    }
    return { removed: removed.length, status: 'completed' };
  }

  health(): Record<string, unknown> {
    const now = Date.now();
    const busy = new Set([...this.#jobs.values()].filter((j) => j.status === 'IN_PROGRESS').map((j) => j.workerId));
    let idle = 0;
    let running = 0;
    for (const [workerId, seenAt] of this.#workersSeen) {
      if (now - seenAt > WORKER_SEEN_WINDOW_MS) continue;
      if (busy.has(workerId)) running++;
      else idle++;
    }
    const states = [...this.#jobs.values()].map((j) => j.status);
    return {
      jobs: {
        completed: this.#counts.completed,
        failed: this.#counts.failed,
        inProgress: states.filter((s) => s === 'IN_PROGRESS').length,
        inQueue: this.#queue.length,
        retried: this.#counts.retried,
      },
      workers: { idle, running },
    };
  }

  // ---- worker side -------------------------------------------------------------------------

  /** The worker called the API (health counts it as present for a minute). */
  seen(workerId: string): void {
    this.#workersSeen.set(workerId, Date.now());
  }

  /** Up to `wanted` jobs for the worker, waiting up to `workerPollHoldMs`; none when it goes away first. */
  take(workerId: string, wanted: number, client: ClientConnection): Promise<StoredJob[]> {
    this.seen(workerId);
    if (!this.workersFirstSeen.has(workerId)) this.workersFirstSeen.set(workerId, performance.timeOrigin + performance.now());
    return new Promise<StoredJob[]>((resolve) => {
      const waiter = { workerId, wanted, deliver: resolve };
      const timer = setTimeout(() => remove(), this.#options.workerPollHoldMs);
      const remove = () => {
        clearTimeout(timer);
        const index = this.#takeWaiters.indexOf(waiter);
        if (index >= 0) this.#takeWaiters.splice(index, 1);
        resolve([]);
      };
      waiter.deliver = (taken) => {
        clearTimeout(timer);
        client.off('close', remove);
        resolve(taken);
      };
      client.once('close', remove);
      this.#takeWaiters.push(waiter);
      this.#dispatch();
    });
  }

  /** Jobs taken by a worker that left before it could receive them: back at the front of the queue. */
  putBack(jobs: StoredJob[]): void {
    for (const job of jobs.reverse()) Object.assign(job, { status: 'IN_QUEUE', startedAt: null, workerId: null });
    this.#queue.unshift(...jobs);
    this.#dispatch();
  }

  /** Hands queued jobs to waiting workers, oldest waiter first. */
  #dispatch(): void {
    while (this.#queue.length > 0 && this.#takeWaiters.length > 0) {
      const waiter = this.#takeWaiters.shift()!;
      const jobs = this.#queue.splice(0, waiter.wanted);
      for (const job of jobs) {
        job.status = 'IN_PROGRESS';
        job.startedAt = Date.now();
        job.workerId = waiter.workerId;
        job.timers.push(
          setTimeout(
            () => this.#finish(job, 'TIMED_OUT', { error: `execution timeout of ${job.executionTimeoutMs} ms exceeded` }),
            job.executionTimeoutMs,
          ),
        );
        this.#notify(job);
      }
      waiter.deliver(jobs);
    }
  }

  /**
   * A worker's job-stream or job-done post for `job` (which it must hold). Returns null when
   * accepted, or the refusal to answer with (404) when the job is not in progress on that worker.
   */
  post(op: string, workerId: string, job: StoredJob, body: unknown): { error: string } | null {
    if (job.status !== 'IN_PROGRESS' || job.workerId !== workerId) {
      job.latePosts.push(Date.now());
      this.#log?.warn('worker posted for a job it does not hold', { job_id: job.id, op, status: job.status });
      return { error: `job ${job.id} is ${job.status}, not in progress on worker ${workerId}` };
    }
    if (typeof body !== 'object' || body === null) throw new HttpError(400, 'body must be a JSON object');
    const fields = body as Record<string, unknown>;
    if (op === 'job-stream') {
      job.stream.push(fields['output']);
      this.#notify(job);
    } else if (fields['status'] === 'IN_PROGRESS') {
      job.output = fields['output'];
      this.#notify(job);
    } else if (typeof fields['error'] === 'string') {
      this.#finish(job, 'FAILED', { error: fields['error'] });
    } else if (fields['error'] !== undefined) {
      throw new HttpError(400, '"error" must be a string');
    } else {
      // For a streaming job the output is the aggregate list (or [] when not aggregated).
      this.#finish(job, 'COMPLETED', { output: fields['output'] });
    }
    return null;
  }

  /** A worker's heartbeat with the jobs it holds. */
  ping(workerId: string, jobIds: string[]): void {
    this.seen(workerId);
    this.heartbeats.set(workerId, { at: Date.now(), jobIds });
  }

  /** Waits, up to `workerPollHoldMs`, until the worker has jobs to stop (or leaves). */
  async waitForStops(workerId: string, client: ClientConnection): Promise<void> {
    this.seen(workerId);
    if (this.#stopsByWorker.get(workerId)?.size) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        client.off('close', done);
        if (this.#stopWaiters.get(workerId) === done) this.#stopWaiters.delete(workerId);
        resolve();
      };
      const timer = setTimeout(done, this.#options.workerPollHoldMs);
      client.once('close', done);
      this.#stopWaiters.get(workerId)?.();
      this.#stopWaiters.set(workerId, done);
    });
  }

  /** The ids of the worker's jobs to stop, now delivered; null when there are none. */
  takeStops(workerId: string): string[] | null {
    const ids = this.#stopsByWorker.get(workerId);
    if (!ids?.size) return null;
    this.#stopsByWorker.delete(workerId);
    for (const id of ids) {
      const job = this.#jobs.get(id);
      if (job) job.stopDeliveredAt = Date.now();
    }
    return [...ids];
  }

  // ---- state changes -----------------------------------------------------------------------

  #finish(job: StoredJob, status: JobStatus, result: { output?: unknown; error?: string }): void {
    if (FINAL_STATES.has(job.status)) return;
    const wasRunningOn = job.status === 'IN_PROGRESS' ? job.workerId : null;
    const queued = this.#queue.indexOf(job);
    if (queued >= 0) this.#queue.splice(queued, 1);
    job.timers.forEach(clearTimeout);
    job.timers = [setTimeout(() => this.#jobs.delete(job.id), this.#options.resultRetentionMs)];
    job.status = status;
    job.completedAt = Date.now();
    if (result.output !== undefined) job.output = result.output;
    if (result.error !== undefined) job.error = result.error;
    if (status === 'COMPLETED') this.#counts.completed++;
    if (status === 'FAILED') this.#counts.failed++;
    // A job ended by the platform (cancel, timeout) is stopped on its worker.
    if (wasRunningOn && status !== 'COMPLETED' && status !== 'FAILED') {
      const stops = this.#stopsByWorker.get(wasRunningOn) ?? new Set<string>();
      stops.add(job.id);
      this.#stopsByWorker.set(wasRunningOn, stops);
      this.#stopWaiters.get(wasRunningOn)?.();
    }
    this.#notify(job);
    if (job.webhook) void this.#callWebhook(job.webhook, this.statusOf(job));
  }

  #notify(job: StoredJob): void {
    for (const listener of [...job.changed]) listener();
  }

  async #callWebhook(url: string, body: unknown): Promise<void> {
    for (let attempt = 1; attempt <= 3; attempt++) {
      try {
        const response = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(10_000),
        });
        if (response.ok) return;
      } catch {
        // retried below
      }
      await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
    }
    this.#log?.warn('webhook could not be delivered', { url });
  }
}
