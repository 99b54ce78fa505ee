/**
 * A local RunPod API: a simulator of the platform that serves both sides on their real paths
 * (PROTOCOLS.md sections 1 and 2), so the real `runpod-sdk` client drives the real worker loop.
 *
 * Client side, under `/v2/<endpoint>/`: run, runsync, status, status-sync, stream (long poll, only
 * new chunks), cancel, retry, purge-queue, health. Worker side: job-take, job-take-batch,
 * job-stream, job-done, ping, job-stop. One queue, the platform's job states, execution timeout,
 * TTL and result retention. `npm start` runs it with the worker wired to it through the same
 * RUNPOD_WEBHOOK_* variables as production.
 *
 * This file is the HTTP side (routes, auth, bodies, CORS); the jobs, their states, timers and
 * waiting workers are the `JobStore` (job-store.ts).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { formatIssues } from '../config.js';
import type { Logger } from '../../src/log/logger.js';
import { secretsEqual } from '../../src/util/secrets.js';
import { HttpError, JobStore, type JobStoreOptions, type SimulatedJob } from './job-store.js';

export type { JobStatus, SimulatedJob } from './job-store.js';

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

export class LocalRunpodApi {
  readonly #server: Server;
  readonly #options: { host: string; port: number; endpointId: string; apiKey: string | null };
  readonly #log: Logger | null;
  readonly #store: JobStore;

  private constructor(options: LocalRunpodApiOptions) {
    this.#options = {
      host: options.host ?? '127.0.0.1',
      port: options.port ?? 8005,
      endpointId: options.endpointId ?? 'local',
      apiKey: options.apiKey ?? null,
    };
    const storeOptions: JobStoreOptions = {
      workerPollHoldMs: options.workerPollHoldMs ?? 20_000,
      streamHoldMs: options.streamHoldMs ?? 10_000,
      defaultExecutionTimeoutMs: options.defaultExecutionTimeoutMs ?? 600_000,
      defaultTtlMs: options.defaultTtlMs ?? 86_400_000,
      resultRetentionMs: options.resultRetentionMs ?? 30 * 60_000,
    };
    this.#log = options.log ?? null;
    this.#store = new JobStore(storeOptions, this.#log);
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
    return this.#store.job(id);
  }

  /** When each worker first called the API (epoch ms): start-up benchmarks read it. */
  get workersFirstSeen(): ReadonlyMap<string, number> {
    return this.#store.workersFirstSeen;
  }

  /** Worker ids and the job ids their last heartbeat reported. */
  get heartbeats(): ReadonlyMap<string, { at: number; jobIds: string[] }> {
    return this.#store.heartbeats;
  }

  async close(): Promise<void> {
    this.#store.close();
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
    const store = this.#store;
    const route = `${method} ${op}`;
    const id = rest[0];
    switch (route) {
      case 'POST run':
        return sendJson(res, 200, store.submit(parseRun(await readJson(req, RUN_BODY_LIMIT))));
      case 'POST runsync': {
        const { id: jobId } = store.submit(parseRun(await readJson(req, RUNSYNC_BODY_LIMIT)));
        return sendJson(res, 200, await store.waitFinal(jobId, waitParam(url)));
      }
      case 'GET status':
      case 'POST status':
        return sendJson(res, 200, store.statusOf(store.mustGet(id)));
      case 'GET status-sync':
      case 'POST status-sync':
        return sendJson(res, 200, await store.waitFinal(store.mustGet(id).id, waitParam(url)));
      case 'GET stream':
      case 'POST stream':
        return sendJson(res, 200, await store.streamChunks(store.mustGet(id), req));
      case 'POST cancel':
        return sendJson(res, 200, store.cancel(store.mustGet(id)));
      case 'POST retry':
        return sendJson(res, 200, store.retry(store.mustGet(id)));
      case 'POST purge-queue':
        return sendJson(res, 200, store.purgeQueue());
      case 'GET health':
        return sendJson(res, 200, store.health());
      case 'GET job-take':
      case 'GET job-take-batch':
        return this.#jobTake(req, res, rest[0] ?? 'unknown', op === 'job-take-batch', url);
      case 'POST job-stream':
      case 'POST job-done':
        return this.#workerPost(req, res, op, rest[0] ?? 'unknown', rest[1]);
      case 'GET ping':
        store.ping(rest[0] ?? 'unknown', (url.searchParams.get('job_id') ?? '').split(',').filter(Boolean));
        return sendJson(res, 200, {});
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

  // ---- worker side -------------------------------------------------------------------------

  async #jobTake(req: IncomingMessage, res: ServerResponse, workerId: string, batch: boolean, url: URL) {
    const wanted = batch ? Math.max(1, Number(url.searchParams.get('batch_size') ?? '1') || 1) : 1;
    const jobs = await this.#store.take(workerId, wanted, req);
    if (res.destroyed || jobs.length === 0) {
      // A client that left cannot receive its jobs: put them back at the front.
      if (jobs.length > 0) {
        this.#store.putBack(jobs);
        return;
      }
      res.writeHead(204).end();
      return;
    }
    const bodies = jobs.map((job) => ({ id: job.id, input: job.input }));
    sendJson(res, 200, batch ? bodies : bodies[0]);
  }

  async #workerPost(req: IncomingMessage, res: ServerResponse, op: string, workerId: string, jobId: string | undefined) {
    this.#store.seen(workerId);
    const body = await readJson(req, WORKER_BODY_LIMIT);
    const refusal = this.#store.post(op, workerId, this.#store.mustGet(jobId), body);
    sendJson(res, refusal ? 404 : 200, refusal ?? {});
  }

  async #jobStop(req: IncomingMessage, res: ServerResponse, workerId: string): Promise<void> {
    await this.#store.waitForStops(workerId, req);
    if (res.destroyed) return;
    const ids = this.#store.takeStops(workerId);
    if (!ids) {
      res.writeHead(204).end();
      return;
    }
    sendJson(res, 200, { jobsToStop: ids });
  }
}

/** A `/run` or `/runsync` body, checked. */
function parseRun(body: unknown): z.infer<typeof runRequestSchema> {
  const parsed = runRequestSchema.safeParse(body);
  if (!parsed.success) throw new HttpError(400, `invalid request: ${formatIssues(parsed.error.issues)}`);
  return parsed.data;
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
