import type { Logger } from '../../src/log/logger.js';

/** A job as a handler sees it. */
export interface WorkerJob {
  readonly id: string;
  readonly input: unknown;
  readonly log: Logger;
  /** Publishes a progress update, seen by clients as `output` of `/status` while the job runs. */
  progress(update: unknown): Promise<void>;
  /**
   * Fires when the worker is asked to stop (SIGTERM). The job may finish, but a long one (a live
   * session) should wrap up soon. Unlike the handler's signal, it does not mean "stop now".
   */
  readonly shutdown?: AbortSignal;
}

/**
 * A handler turns one job into a stream of small JSON events. The runtime owns everything about
 * posting: each yielded event becomes one job-stream post, in order. `signal` fires when the job
 * is stopped (client cancel, timeout, shutdown); the handler should stop within one step.
 */
export type JobHandler = (job: WorkerJob, signal: AbortSignal) => AsyncIterable<unknown>;

export interface HandlerDefinition {
  handle: JobHandler;
  /** Also send the list of all events as the job's final output (`/run`, `/runsync` see it). */
  returnAggregateStream: boolean;
  /**
   * Jobs this handler runs at once (RunPod's Python SDK calls it the concurrency modifier): the
   * queue worker takes jobs only while it holds fewer. Default 1.
   */
  concurrency?: number;
}

/** RunPod refuses stream chunks over 1 MB. */
export const MAX_STREAM_CHUNK_BYTES = 1_000_000;
