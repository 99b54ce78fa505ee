/**
 * The learned end-of-turn model: Smart Turn v3.2 (pipecat-ai/smart-turn, BSD-2-Clause), a Whisper-tiny
 * encoder with a classifier head, int8, on onnxruntime CPU. Input: Whisper log-mel features of the
 * turn's last 8 s (see whisper-features.ts); output: the probability that the turn is complete.
 *
 * One model per process, shared by every stream. Features and inference run in a worker thread
 * (smart-turn-worker.ts), one prediction at a time in arrival order; a prediction whose signal is
 * aborted while it waits is dropped without running. The pinned production file: SMART_TURN_V3_2 in
 * src/models/registry.ts.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { ConfigError } from '../errors.js';
import type { TurnWorkerReply, TurnWorkerRequest } from './smart-turn-worker.js';

export interface TurnPrediction {
  /** Probability that the turn is complete, 0..1. */
  probability: number;
  /** Wall time from the request to the verdict, queueing included. */
  ms: number;
  featuresMs: number;
  modelMs: number;
}

/** What the endpointer needs of a turn model (the real one, or a test double). */
export interface TurnModel {
  /** The verdict on a turn's 16 kHz audio so far; rejects with the signal's reason when aborted before it ran. */
  predict(audio: Float32Array, signal?: AbortSignal): Promise<TurnPrediction>;
  dispose(): Promise<void>;
}

export interface TurnModelFile {
  path: string;
  /** Expected sha256; null skips the check (a custom model). */
  sha256: string | null;
  /** onnxruntime intra-op threads in the worker. */
  threads?: number;
}

interface Pending {
  id: number;
  audio: Float32Array;
  signal: AbortSignal | undefined;
  requestedAt: number;
  resolve: (prediction: TurnPrediction) => void;
  reject: (error: Error) => void;
}

/** The worker's entry: the .ts source through tsx when running from source, else the bundle's sibling file. */
function workerEntry(): { url: URL; execArgv: string[] } {
  return import.meta.url.endsWith('.ts')
    ? { url: new URL('./smart-turn-worker.ts', import.meta.url), execArgv: ['--import', 'tsx'] }
    : { url: new URL('./smart-turn-worker.mjs', import.meta.url), execArgv: [] };
}

export class SmartTurnModel implements TurnModel {
  readonly #worker: Worker;
  readonly #queue: Pending[] = [];
  #running: Pending | null = null;
  #nextId = 0;
  #broken: Error | null = null;
  #exited = false;

  private constructor(worker: Worker) {
    this.#worker = worker;
    worker.on('message', (reply: TurnWorkerReply) => this.#onReply(reply));
    worker.on('error', (error) => this.#fail(new Error(`the turn model's worker failed: ${error.message}`)));
    worker.on('exit', (code) => {
      this.#exited = true;
      this.#fail(new Error(`the turn model's worker exited (code ${code})`));
    });
  }

  /**
   * Reads and checks the file (sha256), then loads it in a worker thread. Every failure is a
   * ConfigError naming the file: a missing, corrupt or foreign model stops start-up.
   */
  static async load(file: TurnModelFile): Promise<SmartTurnModel> {
    let bytes: Buffer;
    try {
      bytes = await readFile(file.path);
    } catch (cause) {
      throw new ConfigError(`turn model not found at ${file.path}: fetch it with npm run models (or set S2S_TURN_MODEL=off)`, { cause });
    }
    if (file.sha256) {
      const actual = createHash('sha256').update(bytes).digest('hex');
      if (actual !== file.sha256) {
        throw new ConfigError(`turn model at ${file.path} has sha256 ${actual}, expected ${file.sha256}: the file is corrupt or not the pinned version`);
      }
    }
    const entry = workerEntry();
    const worker = new Worker(entry.url, { execArgv: entry.execArgv });
    const model = await new Promise<SmartTurnModel>((resolve, reject) => {
      const onReply = (reply: TurnWorkerReply) => {
        if (reply.type !== 'ready' && reply.type !== 'load_failed') return;
        worker.off('message', onReply);
        worker.off('error', onError);
        if (reply.type === 'ready') resolve(new SmartTurnModel(worker));
        else reject(new ConfigError(`turn model at ${file.path} could not be loaded: ${reply.message}`));
      };
      const onError = (error: Error) => reject(new ConfigError(`turn model at ${file.path}: its worker failed to start: ${error.message}`, { cause: error }));
      worker.on('message', onReply);
      worker.once('error', onError);
      const model = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
      worker.postMessage({ type: 'load', model, threads: file.threads ?? 1 } satisfies TurnWorkerRequest, [model]);
    }).catch(async (error: unknown) => {
      await worker.terminate();
      throw error;
    });
    // An idle worker does not keep the process alive (one with a prediction running does).
    worker.unref();
    return model;
  }

  predict(audio: Float32Array, signal?: AbortSignal): Promise<TurnPrediction> {
    if (this.#broken) return Promise.reject(this.#broken);
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    return new Promise((resolve, reject) => {
      this.#queue.push({ id: this.#nextId++, audio, signal, requestedAt: performance.now(), resolve, reject });
      this.#next();
    });
  }

  /** Ends the worker once its run in progress is over (terminating it mid-run would abort the process). */
  async dispose(): Promise<void> {
    if (this.#exited) return;
    const exited = new Promise<void>((resolve) => this.#worker.once('exit', () => resolve()));
    this.#fail(new Error('the turn model was disposed'));
    // Held until it has gone, or an idle (unreferenced) worker would let the process leave first.
    this.#worker.ref();
    this.#worker.postMessage({ type: 'close' } satisfies TurnWorkerRequest);
    await exited;
  }

  #next(): void {
    while (!this.#running && this.#queue.length > 0) {
      const request = this.#queue.shift()!;
      if (request.signal?.aborted) {
        request.reject(request.signal.reason as Error);
        continue;
      }
      this.#running = request;
      this.#worker.ref();
      // A copy: the caller keeps its audio; the copy's buffer moves to the worker without another copy.
      const audio = request.audio.slice();
      this.#worker.postMessage({ type: 'predict', id: request.id, audio } satisfies TurnWorkerRequest, [audio.buffer]);
    }
  }

  #onReply(reply: TurnWorkerReply): void {
    const request = this.#running;
    if (!request || (reply.type !== 'verdict' && reply.type !== 'failed') || reply.id !== request.id) return;
    this.#running = null;
    this.#worker.unref();
    if (reply.type === 'verdict') {
      request.resolve({ probability: reply.probability, ms: performance.now() - request.requestedAt, featuresMs: reply.featuresMs, modelMs: reply.modelMs });
    } else {
      request.reject(new Error(`turn model: ${reply.message}`));
    }
    this.#next();
  }

  #fail(error: Error): void {
    if (this.#broken) return;
    this.#broken = error;
    for (const request of [...(this.#running ? [this.#running] : []), ...this.#queue.splice(0)]) request.reject(error);
    this.#running = null;
  }
}
