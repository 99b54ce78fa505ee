/**
 * A local RunPod API: a simulator of the platform that serves both sides on their real paths
 * (PROTOCOLS.md sections 1 and 2), so the real `runpod-sdk` client drives the real worker loop.
 *
 * Client side, under `/v2/<endpoint>/`: run, runsync, status, status-sync, stream (long poll, only
 * new chunks), cancel, retry, purge-queue, health. Worker side: job-take, job-take-batch,
 * job-stream, job-done, ping, job-stop. One queue, the platform's job states, execution timeout,
 * TTL and result retention. `npm start` runs it with the worker wired to it through the same
 * RUNPOD_WEBHOOK_* variables as production.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { formatIssues } from '../config.js';
import type { Logger } from '../../src/log/logger.js';
import { secretsEqual } from '../../src/util/secrets.js';

export type JobStatus = 'IN_QUEUE' | 'IN_PROGRESS' | 'COMPLETED' | 'FAILED' | 'CANCELLED' | 'TIMED_OUT';
const FINAL_STATES: ReadonlySet<JobStatus> = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'TIMED_OUT']);

export interface LocalRunpodApiOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  endpointId?: string;
  /** When set, clients must send `Bearer <key>` and workers the raw key. */
  apiKey?: string | null;
  /** How long job-take and job-stop are held open with nothing to say. */
  workerPollHoldMs?: number;
  /** How long `/stream` is held open waiting for new chunks. */
  streamHoldMs?: number;
  defaultExecutionTimeoutMs?: number;
  defaultTtlMs?: number;
  /** Finished jobs are forgotten after this long (RunPod: 30 minutes for `/run`). */
  resultRetentionMs?: number;
  log?: Logger;
}

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

interface InternalJob extends SimulatedJob {
  timers: NodeJS.Timeout[];
  changed: Set<() => void>;
}

const runRequestSchema = z.object({
  input: z.unknown().refine((value) => value !== undefined, { message: 'input is required' }),
  webhook: z.string().url().optional(),
  policy: z
    .object({
      executionTimeout: z.number().int().positive().optional(),
      ttl: z.number().int().positive().optional(),
      lowPriority: z.boolean().optional(),
    })
    .optional(),
});

/** A local development tool: any page may call it (the browser client runs on its own port). */
const CORS_HEADERS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, POST, OPTIONS',
  'access-control-allow-headers': 'authorization, content-type',
};

const RUN_BODY_LIMIT = 10 * 1024 * 1024;
const RUNSYNC_BODY_LIMIT = 20 * 1024 * 1024;
const WORKER_BODY_LIMIT = 2 * 1024 * 1024 * 1024;
const WORKER_SEEN_WINDOW_MS = 60_000;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export class LocalRunpodApi {
  readonly #server: Server;
  readonly #options: Required<Omit<LocalRunpodApiOptions, 'log' | 'apiKey'>> & { apiKey: string | null };
  readonly #log: Logger | null;
  readonly #jobs = new Map<string, InternalJob>();
  readonly #queue: InternalJob[] = [];
  readonly #takeWaiters: { workerId: string; wanted: number; deliver: (jobs: InternalJob[]) => void }[] = [];
  readonly #stopsByWorker = new Map<string, Set<string>>();
  readonly #stopWaiters = new Map<string, () => void>();
  readonly #workersSeen = new Map<string, number>();
  /** When each worker first called the API (epoch ms): start-up benchmarks read it. */
  readonly workersFirstSeen = new Map<string, number>();
  readonly #counts = { completed: 0, failed: 0, retried: 0 };
  #closed = false;

  private constructor(options: LocalRunpodApiOptions) {
    this.#options = {
      host: options.host ?? '127.0.0.1',
      port: options.port ?? 8005,
      endpointId: options.endpointId ?? 'local',
      apiKey: options.apiKey ?? null,
      workerPollHoldMs: options.workerPollHoldMs ?? 20_000,
      streamHoldMs: options.streamHoldMs ?? 10_000,
      defaultExecutionTimeoutMs: options.defaultExecutionTimeoutMs ?? 600_000,
      defaultTtlMs: options.defaultTtlMs ?? 86_400_000,
      resultRetentionMs: options.resultRetentionMs ?? 30 * 60_000,
    };
    this.#log = options.log ?? null;
    this.#server = createServer((req, res) => {
      this.#route(req, res).catch((error: unknown) => {
        const status = error instanceof HttpError ? error.status : 500;
        if (status === 500) this.#log?.error('local API error', { error: String(error) });
        sendJson(res, status, { error: error instanceof Error ? error.message : String(error) });
      });
    });
    this.#server.keepAliveTimeout = 65_000;
  }

  static async start(options: LocalRunpodApiOptions = {}): Promise<LocalRunpodApi> {
    const api = new LocalRunpodApi(options);
    await new Promise<void>((resolve, reject) => {
      api.#server.once('error', reject);
      api.#server.listen(api.#options.port, api.#options.host, () => resolve());
    });
    return api;
  }

  /** The HTTP server, so live sessions can share its port (`/ws`). */
  get httpServer(): Server {
    return this.#server;
  }

  /** `http://host:port` */
  get url(): string {
    const address = this.#server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `http://${host}:${address.port}`;
  }

  /** What to give `runpodSdk(key, { baseUrl })`. */
  get baseUrl(): string {
    return `${this.url}/v2`;
  }

  get endpointId(): string {
    return this.#options.endpointId;
  }

  /** The RUNPOD_WEBHOOK_* templates, shaped exactly as the platform sets them for a worker. */
  workerEnv(): Record<string, string> {
    const base = `${this.url}/v2/${this.#options.endpointId}`;
    return {
      RUNPOD_WEBHOOK_GET_JOB: `${base}/job-take/$RUNPOD_POD_ID?gpu=local`,
      RUNPOD_WEBHOOK_POST_OUTPUT: `${base}/job-done/$RUNPOD_POD_ID/$ID?gpu=local`,
      RUNPOD_WEBHOOK_POST_STREAM: `${base}/job-stream/$RUNPOD_POD_ID/$ID?gpu=local`,
      RUNPOD_WEBHOOK_PING: `${base}/ping/$RUNPOD_POD_ID?gpu=local`,
      ...(this.#options.apiKey ? { RUNPOD_AI_API_KEY: this.#options.apiKey } : {}),
    };
  }

  /** A job's record, for tests and debugging. */
  job(id: string): Readonly<SimulatedJob> | undefined {
    return this.#jobs.get(id);
  }

  /** Worker ids and the job ids their last heartbeat reported. */
  readonly heartbeats = new Map<string, { at: number; jobIds: string[] }>();

  async close(): Promise<void> {
    this.#closed = true;
    for (const job of this.#jobs.values()) job.timers.forEach(clearTimeout);
    for (const waiter of this.#takeWaiters.splice(0)) waiter.deliver([]);
    for (const wake of this.#stopWaiters.values()) wake();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  // ---- routing -------------------------------------------------------------------------------

  async #route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://local');
    const [v2, endpointId, op, ...rest] = url.pathname.split('/').filter(Boolean);
    if (v2 !== 'v2' || !endpointId || !op) throw new HttpError(404, `no such path: ${url.pathname}`);
    if (endpointId !== this.#options.endpointId) {
      throw new HttpError(404, `unknown endpoint "${endpointId}": this local API serves "${this.#options.endpointId}"`);
    }
    const method = req.method ?? 'GET';
    if (method === 'OPTIONS') {
      // The browser client (another port) calls the API: answer CORS preflights.
      res.writeHead(204, CORS_HEADERS).end();
      return;
    }
    const workerOps = ['job-take', 'job-take-batch', 'job-stream', 'job-done', 'ping', 'job-stop'];
    this.#checkAuth(req, workerOps.includes(op));
    const route = `${method} ${op}`;
    const id = rest[0];
    switch (route) {
      case 'POST run':
        return sendJson(res, 200, this.#submit(await readJson(req, RUN_BODY_LIMIT)));
      case 'POST runsync': {
        const { id: jobId } = this.#submit(await readJson(req, RUNSYNC_BODY_LIMIT));
        return sendJson(res, 200, await this.#waitFinal(jobId, waitParam(url)));
      }
      case 'GET status':
      case 'POST status':
        return sendJson(res, 200, this.#statusOf(this.#mustGet(id)));
      case 'GET status-sync':
      case 'POST status-sync':
        return sendJson(res, 200, await this.#waitFinal(this.#mustGet(id).id, waitParam(url)));
      case 'GET stream':
      case 'POST stream':
        return sendJson(res, 200, await this.#streamChunks(this.#mustGet(id), req));
      case 'POST cancel':
        return sendJson(res, 200, this.#cancel(this.#mustGet(id)));
      case 'POST retry':
        return sendJson(res, 200, this.#retry(this.#mustGet(id)));
      case 'POST purge-queue':
        return sendJson(res, 200, this.#purgeQueue());
      case 'GET health':
        return sendJson(res, 200, this.#health());
      case 'GET job-take':
      case 'GET job-take-batch':
        return this.#jobTake(req, res, rest[0] ?? 'unknown', op === 'job-take-batch', url);
      case 'POST job-stream':
      case 'POST job-done':
        return this.#workerPost(req, res, op, rest[0] ?? 'unknown', rest[1]);
      case 'GET ping':
        return this.#ping(res, rest[0] ?? 'unknown', url);
      case 'GET job-stop':
        return this.#jobStop(req, res, rest[0] ?? 'unknown');
      default:
        throw new HttpError(404, `no such operation: ${method} ${url.pathname}`);
    }
  }

  #checkAuth(req: IncomingMessage, workerSide: boolean): void {
    const key = this.#options.apiKey;
    if (!key) return;
    const expected = workerSide ? key : `Bearer ${key}`;
    if (!secretsEqual(req.headers.authorization ?? '', expected)) throw new HttpError(401, 'unauthorized: wrong or missing API key');
  }

  #mustGet(id: string | undefined): InternalJob {
    const job = id ? this.#jobs.get(id) : undefined;
    if (!job) throw new HttpError(404, `no job with id "${id ?? ''}" (results are kept ${this.#options.resultRetentionMs / 60_000} minutes)`);
    return job;
  }

  // ---- client side -------------------------------------------------------------------------

  #submit(body: unknown): { id: string; status: JobStatus } {
    const parsed = runRequestSchema.safeParse(body);
    if (!parsed.success) throw new HttpError(400, `invalid request: ${formatIssues(parsed.error.issues)}`);
    const job: InternalJob = {
      id: `local-${randomUUID()}`,
      input: parsed.data.input,
      status: 'IN_QUEUE',
      webhook: parsed.data.webhook ?? null,
      executionTimeoutMs: parsed.data.policy?.executionTimeout ?? this.#options.defaultExecutionTimeoutMs,
      ttlMs: parsed.data.policy?.ttl ?? this.#options.defaultTtlMs,
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

  #enqueue(job: InternalJob): void {
    job.timers.push(setTimeout(() => this.#finish(job, 'TIMED_OUT', { error: 'job TTL expired' }), job.ttlMs - (Date.now() - job.createdAt)));
    this.#queue.push(job);
    this.#dispatch();
  }

  #statusOf(job: InternalJob): Record<string, unknown> {
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

  async #waitFinal(id: string, waitMs: number): Promise<Record<string, unknown>> {
    const job = this.#mustGet(id);
    await this.#waitForChange(job, waitMs, () => FINAL_STATES.has(job.status));
    return this.#statusOf(job);
  }

  async #streamChunks(job: InternalJob, req: IncomingMessage): Promise<Record<string, unknown>> {
    const hasNews = () => job.stream.length > job.streamSent || FINAL_STATES.has(job.status);
    await this.#waitForChange(job, this.#options.streamHoldMs, hasNews, req);
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
  #waitForChange(job: InternalJob, waitMs: number, ready: () => boolean, req?: IncomingMessage): Promise<void> {
    if (ready() || this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        job.changed.delete(check);
        req?.off('close', done);
        resolve();
      };
      const check = () => {
        if (ready()) done();
      };
      const timer = setTimeout(done, waitMs);
      job.changed.add(check);
      req?.once('close', done);
    });
  }

  #cancel(job: InternalJob): Record<string, unknown> {
    if (!FINAL_STATES.has(job.status)) this.#finish(job, 'CANCELLED', {});
    return { id: job.id, status: job.status };
  }

  #retry(job: InternalJob): Record<string, unknown> {
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

  #purgeQueue(): Record<string, unknown> {
    const removed = this.#queue.splice(0);
    for (const job of removed) {
      job.timers.forEach(clearTimeout);
      this.#jobs.delete(job.id);
    }
    return { removed: removed.length, status: 'completed' };
  }

  #health(): Record<string, unknown> {
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

  async #jobTake(req: IncomingMessage, res: ServerResponse, workerId: string, batch: boolean, url: URL) {
    this.#workersSeen.set(workerId, Date.now());
    if (!this.workersFirstSeen.has(workerId)) this.workersFirstSeen.set(workerId, performance.timeOrigin + performance.now());
    const wanted = batch ? Math.max(1, Number(url.searchParams.get('batch_size') ?? '1') || 1) : 1;
    const jobs = await new Promise<InternalJob[]>((resolve) => {
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
        req.off('close', remove);
        resolve(taken);
      };
      req.once('close', remove);
      this.#takeWaiters.push(waiter);
      this.#dispatch();
    });
    if (res.destroyed || jobs.length === 0) {
      // A client that left cannot receive its jobs: put them back at the front.
      if (jobs.length > 0) {
        for (const job of jobs.reverse()) Object.assign(job, { status: 'IN_QUEUE', startedAt: null, workerId: null });
        this.#queue.unshift(...jobs);
        this.#dispatch();
        return;
      }
      res.writeHead(204).end();
      return;
    }
    const bodies = jobs.map((job) => ({ id: job.id, input: job.input }));
    sendJson(res, 200, batch ? bodies : bodies[0]);
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

  async #workerPost(req: IncomingMessage, res: ServerResponse, op: string, workerId: string, jobId: string | undefined) {
    this.#workersSeen.set(workerId, Date.now());
    const body = (await readJson(req, WORKER_BODY_LIMIT)) as Record<string, unknown> | null;
    const job = this.#mustGet(jobId);
    if (job.status !== 'IN_PROGRESS' || job.workerId !== workerId) {
      job.latePosts.push(Date.now());
      this.#log?.warn('worker posted for a job it does not hold', { job_id: job.id, op, status: job.status });
      return sendJson(res, 404, { error: `job ${job.id} is ${job.status}, not in progress on worker ${workerId}` });
    }
    if (typeof body !== 'object' || body === null) throw new HttpError(400, 'body must be a JSON object');
    if (op === 'job-stream') {
      job.stream.push(body['output']);
      this.#notify(job);
    } else if (body['status'] === 'IN_PROGRESS') {
      job.output = body['output'];
      this.#notify(job);
    } else if (typeof body['error'] === 'string') {
      this.#finish(job, 'FAILED', { error: body['error'] });
    } else if (body['error'] !== undefined) {
      throw new HttpError(400, '"error" must be a string');
    } else {
      // For a streaming job the output is the aggregate list (or [] when not aggregated).
      this.#finish(job, 'COMPLETED', { output: body['output'] });
    }
    sendJson(res, 200, {});
  }

  #ping(res: ServerResponse, workerId: string, url: URL): void {
    this.#workersSeen.set(workerId, Date.now());
    const ids = (url.searchParams.get('job_id') ?? '').split(',').filter(Boolean);
    this.heartbeats.set(workerId, { at: Date.now(), jobIds: ids });
    sendJson(res, 200, {});
  }

  async #jobStop(req: IncomingMessage, res: ServerResponse, workerId: string): Promise<void> {
    this.#workersSeen.set(workerId, Date.now());
    const pending = () => this.#stopsByWorker.get(workerId);
    if (!pending()?.size) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          req.off('close', done);
          if (this.#stopWaiters.get(workerId) === done) this.#stopWaiters.delete(workerId);
          resolve();
        };
        const timer = setTimeout(done, this.#options.workerPollHoldMs);
        req.once('close', done);
        this.#stopWaiters.get(workerId)?.();
        this.#stopWaiters.set(workerId, done);
      });
    }
    const ids = pending();
    if (res.destroyed) return;
    if (!ids?.size) {
      res.writeHead(204).end();
      return;
    }
    this.#stopsByWorker.delete(workerId);
    for (const id of ids) {
      const job = this.#jobs.get(id);
      if (job) job.stopDeliveredAt = Date.now();
    }
    sendJson(res, 200, { jobsToStop: [...ids] });
  }

  // ---- state changes -----------------------------------------------------------------------

  #finish(job: InternalJob, status: JobStatus, result: { output?: unknown; error?: string }): void {
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
    if (job.webhook) void this.#callWebhook(job.webhook, this.#statusOf(job));
  }

  #notify(job: InternalJob): void {
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

function waitParam(url: URL): number {
  const wait = Number(url.searchParams.get('wait') ?? '90000');
  return Number.isFinite(wait) ? Math.min(Math.max(wait, 1000), 300_000) : 90_000;
}

async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new HttpError(413, `request body over ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'request body is not valid JSON');
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...CORS_HEADERS });
  res.end(text);
}
