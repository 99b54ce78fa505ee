/**
 * The worker's configuration, read from the environment and command line once at start,
 * validated with zod, frozen, and passed down. No other module reads `process.env`.
 */
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { ConfigError } from '../src/errors.js';
import type { LogLevel } from '../src/log/logger.js';

const intFromEnv = (fallback: number, min: number, max: number) =>
  z.coerce.number().int().min(min).max(max).default(fallback);

export const envSchema = z.object({
  RUNPOD_WEBHOOK_GET_JOB: z.string().url().optional(),
  RUNPOD_WEBHOOK_POST_OUTPUT: z.string().url().optional(),
  RUNPOD_WEBHOOK_POST_STREAM: z.string().url().optional(),
  RUNPOD_WEBHOOK_PING: z.string().url().optional(),
  RUNPOD_AI_API_KEY: z.string().optional(),
  RUNPOD_POD_ID: z.string().min(1).default('local-worker'),
  RUNPOD_GPU_TYPE_ID: z.string().optional(),
  RUNPOD_PING_INTERVAL: intFromEnv(10_000, 100, 600_000),
  RUNPOD_ENDPOINT_ID: z.string().optional(),
  RUNPOD_DEBUG_LEVEL: z
    .string()
    .transform((v) => v.toUpperCase())
    .pipe(z.enum(['DEBUG', 'INFO', 'WARN', 'ERROR']))
    .default('INFO'),
  /** Replaced by S2S_MAX_CONVERSATIONS (the pipeline's setting, which the handler tells the worker): refused with a clear message. */
  S2S_CONCURRENCY: z.string().optional(),
  /** Jobs asked for per job-take; above 1 the batch path `/job-take-batch/` is used. */
  S2S_JOB_TAKE_BATCH: intFromEnv(1, 1, 64),
  /** Load-balancing endpoints: the HTTP port, and the port of the `/ping` health check. */
  PORT: z.coerce.number().int().min(1).max(65_535).optional(),
  PORT_HEALTH: z.coerce.number().int().min(1).max(65_535).optional(),
  /** Local development (--rp_serve_api): the port of the browser client; 0 turns it off. */
  S2S_WEB_PORT: intFromEnv(3000, 0, 65_535),
});

export interface PlatformUrls {
  /** Templates exactly as RunPod sets them; `urls.ts` fills them in. */
  jobTake: string;
  jobDone: string;
  jobStream: string;
  ping: string | null;
}

export interface WorkerConfig {
  workerId: string;
  gpuTypeId: string | null;
  apiKey: string | null;
  endpointId: string | null;
  pingIntervalMs: number;
  /** Jobs asked for per job-take, at most; the worker also keeps it below its handler's concurrency. */
  jobTakeBatch: number;
  logLevel: LogLevel;
  /** Log JSON lines (on RunPod Serverless, where RUNPOD_ENDPOINT_ID is set). */
  jsonLogs: boolean;
  /** Null in local mode (no RUNPOD_WEBHOOK_GET_JOB). */
  platform: PlatformUrls | null;
  /** Set on a load-balancing endpoint: serve `/ping` here from the first moment. */
  healthPort: number | null;
  webPort: number;
}

export type StartMode =
  | { kind: 'worker' }
  | { kind: 'one-shot'; testInput: string | null }
  | { kind: 'serve-api'; host: string; port: number }
  | { kind: 'load-balancer' };

/** Formats zod issues as `field: problem; field: problem`. */
export function formatIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .map((issue) => `${issue.path.length ? issue.path.join('.') : '(root)'}: ${issue.message}`)
    .join('; ');
}

export function readWorkerConfig(env: NodeJS.ProcessEnv): WorkerConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) throw new ConfigError(`invalid environment: ${formatIssues(parsed.error.issues)}`);
  const e = parsed.data;
  if (e.S2S_CONCURRENCY !== undefined) {
    throw new ConfigError('S2S_CONCURRENCY was replaced by S2S_MAX_CONVERSATIONS: conversations (live sessions and turn jobs) one worker carries at once');
  }
  let platform: PlatformUrls | null = null;
  if (e.RUNPOD_WEBHOOK_GET_JOB) {
    if (!e.RUNPOD_WEBHOOK_POST_OUTPUT) {
      throw new ConfigError('RUNPOD_WEBHOOK_GET_JOB is set but RUNPOD_WEBHOOK_POST_OUTPUT is not: both are needed');
    }
    platform = {
      jobTake: e.RUNPOD_WEBHOOK_GET_JOB,
      jobDone: e.RUNPOD_WEBHOOK_POST_OUTPUT,
      // RunPod sets both; the stream URL only differs in its path, so fall back to the done URL's shape.
      jobStream: e.RUNPOD_WEBHOOK_POST_STREAM ?? e.RUNPOD_WEBHOOK_POST_OUTPUT.replace('/job-done/', '/job-stream/'),
      ping: e.RUNPOD_WEBHOOK_PING ?? null,
    };
  }
  return Object.freeze({
    workerId: e.RUNPOD_POD_ID,
    gpuTypeId: e.RUNPOD_GPU_TYPE_ID ?? null,
    apiKey: e.RUNPOD_AI_API_KEY ?? null,
    endpointId: e.RUNPOD_ENDPOINT_ID ?? null,
    pingIntervalMs: e.RUNPOD_PING_INTERVAL,
    jobTakeBatch: e.S2S_JOB_TAKE_BATCH,
    logLevel: e.RUNPOD_DEBUG_LEVEL,
    jsonLogs: Boolean(e.RUNPOD_ENDPOINT_ID),
    platform,
    healthPort: e.PORT_HEALTH ?? e.PORT ?? null,
    webPort: e.S2S_WEB_PORT,
  });
}

/** Reads flags the way RunPod's Python worker names them, so RunPod users find what they expect. */
export function readStartMode(argv: readonly string[], worker: WorkerConfig): StartMode {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        test_input: { type: 'string' },
        rp_serve_api: { type: 'boolean' },
        rp_api_port: { type: 'string' },
        rp_api_host: { type: 'string' },
      },
      strict: true,
    }));
  } catch (error) {
    throw new ConfigError(`bad command line: ${(error as Error).message}`);
  }
  if (values.rp_serve_api) {
    const port = z.coerce.number().int().min(0).max(65_535).safeParse(values.rp_api_port ?? '8005');
    if (!port.success) throw new ConfigError(`--rp_api_port must be a port number, got ${values.rp_api_port}`);
    return { kind: 'serve-api', host: values.rp_api_host ?? '127.0.0.1', port: port.data };
  }
  if (values.test_input === undefined && !worker.platform && worker.healthPort !== null) return { kind: 'load-balancer' };
  if (values.test_input !== undefined || !worker.platform) {
    return { kind: 'one-shot', testInput: values.test_input ?? null };
  }
  return { kind: 'worker' };
}
