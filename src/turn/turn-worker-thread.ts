/**
 * Starting and ending the turn model's worker thread (smart-turn-worker.ts). A start hands the thread a
 * copy of the model bytes (the caller keeps its own, to start another after a death) and resolves once
 * its onnxruntime session is ready; an end lets the run in progress finish first (terminating
 * onnxruntime mid-run aborts the whole process).
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { errorMessage } from '../log/logger.js';
import type { TurnWorkerReply, TurnWorkerRequest } from './smart-turn-worker.js';

/** Makes the worker thread from its entry. The default is `new Worker`; tests pass one that keeps a handle. */
export type CreateTurnWorker = (entry: URL, options: WorkerOptions) => Worker;

export const newTurnWorker: CreateTurnWorker = (entry, options) => new Worker(entry, options);

/** The worker's entry: the .ts source through tsx when running from source, else the bundle's sibling file. */
function workerEntry(): { url: URL; execArgv: string[] } {
  return import.meta.url.endsWith('.ts')
    ? { url: new URL('./smart-turn-worker.ts', import.meta.url), execArgv: ['--import', 'tsx'] }
    : { url: new URL('./smart-turn-worker.mjs', import.meta.url), execArgv: [] };
}

/**
 * A worker with the model loaded, idle, with no listeners of ours left. Rejects with the reason, leaving
 * no thread behind, when the load fails or the thread dies first.
 */
export async function startTurnWorker(model: Uint8Array, threads: number, create: CreateTurnWorker = newTurnWorker): Promise<Worker> {
  const entry = workerEntry();
  const worker = create(entry.url, { execArgv: entry.execArgv });
  let exited = false;
  const listeners: { message?: (reply: TurnWorkerReply) => void; error?: (error: Error) => void; exit?: (code: number) => void } = {};
  try {
    await new Promise<void>((resolve, reject) => {
      listeners.message = (reply) => {
        if (reply.type === 'ready') resolve();
        else if (reply.type === 'load_failed') reject(new Error(reply.message));
      };
      listeners.error = (error) => reject(new Error(`its worker failed: ${errorMessage(error)}`, { cause: error }));
      listeners.exit = (code) => {
        exited = true;
        reject(new Error(`its worker exited (code ${code}) before it was ready`));
      };
      worker.on('message', listeners.message).on('error', listeners.error).on('exit', listeners.exit);
      // A copy moves to the thread; ours stays for the next start (a Buffer's slice() would be a view).
      const bytes = new Uint8Array(model).buffer;
      worker.postMessage({ type: 'load', model: bytes, threads } satisfies TurnWorkerRequest, [bytes]);
    });
  } catch (error) {
    if (!exited) await worker.terminate();
    throw error;
  } finally {
    worker.off('message', listeners.message!).off('error', listeners.error!).off('exit', listeners.exit!);
  }
  return worker;
}

/** Ends a live worker after its run in progress; resolves once the thread has gone. */
export function closeTurnWorker(worker: Worker): Promise<void> {
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  // A failure while it closes ends it all the same (its exit follows); never an unhandled 'error'.
  worker.on('error', () => undefined);
  // Held until it has gone, or an idle (unreferenced) worker would let the process leave first.
  worker.ref();
  worker.postMessage({ type: 'close' } satisfies TurnWorkerRequest);
  return exited;
}
