/**
 * A handler double for testing the worker runtime: it follows a script in the job input instead
 * of running the speech pipeline.
 *
 *   { events: 3, interval_ms: 10 }   yields {type:"tick", n} three times, 10 ms apart
 *   { fail_after: 1, message: "x" }  throws Error("x") after one event
 *   { progress: {...} }              publishes a progress update first
 *   { hang_after: 2 }                after two events, waits forever ignoring its signal
 *   { stamp: true }                  adds `at_ms`, the epoch time in ms (sub-ms precision) of each yield
 *
 * It also counts the listeners on the worker's shutdown signal as each job starts (leak checks).
 */
import { getEventListeners } from 'node:events';
import type { HandlerDefinition, WorkerJob } from '../../handler/runtime/types.js';

export interface ScriptInput {
  events?: number;
  interval_ms?: number;
  fail_after?: number;
  message?: string;
  progress?: unknown;
  hang_after?: number;
  stamp?: boolean;
}

export interface HandlerObservations {
  started: string[];
  aborted: string[];
  finished: string[];
  /** Events yielded, per job id, with the time each was yielded (performance.now()). */
  yielded: Map<string, { n: number; at: number }[]>;
  /** 'abort' listeners on `job.shutdown` when each job started, in job order. */
  shutdownListeners: number[];
}

export function createScriptedHandlerDouble(returnAggregateStream = true): HandlerDefinition & { seen: HandlerObservations } {
  const seen: HandlerObservations = { started: [], aborted: [], finished: [], yielded: new Map(), shutdownListeners: [] };
  return {
    seen,
    returnAggregateStream,
    async *handle(job: WorkerJob, signal: AbortSignal) {
      const script = (job.input ?? {}) as ScriptInput;
      seen.started.push(job.id);
      if (job.shutdown) seen.shutdownListeners.push(getEventListeners(job.shutdown, 'abort').length);
      signal.addEventListener('abort', () => seen.aborted.push(job.id), { once: true });
      if (script.progress !== undefined) await job.progress(script.progress);
      const yielded: { n: number; at: number }[] = [];
      seen.yielded.set(job.id, yielded);
      for (let n = 0; n < (script.events ?? 1); n++) {
        if (script.fail_after === n) throw new Error(script.message ?? 'scripted failure');
        if (script.hang_after === n) await new Promise(() => undefined);
        if (script.interval_ms) await new Promise((resolve) => setTimeout(resolve, script.interval_ms));
        if (signal.aborted) return;
        yielded.push({ n, at: performance.now() });
        yield script.stamp ? { type: 'tick', n, at_ms: performance.timeOrigin + performance.now() } : { type: 'tick', n };
      }
      if (script.fail_after !== undefined && script.fail_after >= (script.events ?? 1)) {
        throw new Error(script.message ?? 'scripted failure');
      }
      seen.finished.push(job.id);
    },
  };
}
