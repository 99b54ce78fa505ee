/**
 * The learned end-of-turn model: Smart Turn v3.2 (pipecat-ai/smart-turn, BSD-2-Clause), a Whisper-tiny
 * encoder with a classifier head, int8, on onnxruntime CPU. Input: Whisper log-mel features of the
 * turn's last 8 s (see whisper-features.ts); output: the probability that the turn is complete.
 *
 * One model per process, shared by every stream. Features and inference run in a worker thread
 * (smart-turn-worker.ts), one prediction at a time in arrival order; a prediction whose signal is
 * aborted while it waits is dropped without running. The pinned production file: SMART_TURN_V3_2 in
 * src/models/registry.ts.
 *
 * A worker that dies (a crash, an exit) is started again from the same bytes, a bounded number of times
 * with backoff; its requests, and every request until it is back, reject at once, so those turns end
 * on the transcript cue. Each death and restart is logged; `health` reports the state.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Worker } from 'node:worker_threads';
import { ConfigError } from '../errors.js';
import { Logger, errorMessage } from '../log/logger.js';
import type { TurnWorkerReply, TurnWorkerRequest } from './smart-turn-worker.js';
import { closeTurnWorker, newTurnWorker, startTurnWorker, type CreateTurnWorker } from './turn-worker-thread.js';

export interface TurnPrediction {
  /** Probability that the turn is complete, 0..1. */
  probability: number;
  /** Wall time from the request to the verdict, queueing included. */
  ms: number;
  featuresMs: number;
  modelMs: number;
}

/** up: serving; restarting: its worker died and a new one is on its way; off: gave up, or disposed. */
export interface TurnModelHealth {
  state: 'up' | 'restarting' | 'off';
  /** Fresh workers started after a death since load (successful or not). */
  restarts: number;
}

/** What the endpointer needs of a turn model (the real one, or a test double). */
export interface TurnModel {
  /** The verdict on a turn's 16 kHz audio so far; rejects with the signal's reason when aborted before it ran. */
  predict(audio: Float32Array, signal?: AbortSignal): Promise<TurnPrediction>;
  /** Whether it is serving, for logs and checks (a double may leave it out). */
  readonly health?: TurnModelHealth;
  dispose(): Promise<void>;
}

export interface TurnModelFile {
  path: string;
  /** Expected sha256; null skips the check (a custom model). */
  sha256: string | null;
  /** onnxruntime intra-op threads in the worker. */
  threads?: number;
}

export interface TurnModelOptions {
  /** Where deaths and restarts of the worker are told (default: readable lines on stderr). */
  log?: Logger;
  /** Makes the worker thread (default `new Worker`). */
  createWorker?: CreateTurnWorker;
  /** Deaths allowed within `restartWindowMs`: one more leaves the model off for the process. */
  maxRestarts?: number;
  restartWindowMs?: number;
  /** Wait before a restart, doubled for each earlier death in the window. */
  restartDelayMs?: number;
}

interface Pending {
  id: number;
  audio: Float32Array;
  signal: AbortSignal | undefined;
  requestedAt: number;
  resolve: (prediction: TurnPrediction) => void;
  reject: (error: Error) => void;
}

export class SmartTurnModel implements TurnModel {
  readonly #bytes: Uint8Array;
  readonly #threads: number;
  readonly #log: Logger;
  readonly #create: CreateTurnWorker;
  readonly #limits: Required<Pick<TurnModelOptions, 'maxRestarts' | 'restartWindowMs' | 'restartDelayMs'>>;
  /** The live worker; null while a new one is on its way, or for good once off. */
  #worker: Worker | null = null;
  readonly #queue: Pending[] = [];
  #running: Pending | null = null;
  #nextId = 0;
  /** Why predictions reject for good (gave up restarting, or disposed). */
  #off: Error | null = null;
  #disposed: Promise<void> | null = null;
  #restarts = 0;
  /** When the worker died, within the restart window. */
  #deaths: number[] = [];
  #restartTimer: NodeJS.Timeout | null = null;
  #restarting: Promise<void> | null = null;

  private constructor(bytes: Uint8Array, threads: number, options: TurnModelOptions) {
    this.#bytes = bytes;
    this.#threads = threads;
    this.#log = options.log ?? new Logger({ level: 'INFO', jsonLines: false });
    this.#create = options.createWorker ?? newTurnWorker;
    this.#limits = { maxRestarts: options.maxRestarts ?? 3, restartWindowMs: options.restartWindowMs ?? 60_000, restartDelayMs: options.restartDelayMs ?? 500 };
  }

  /**
   * Reads and checks the file (sha256), then loads it in a worker thread. Every failure is a
   * ConfigError naming the file: a missing, corrupt or foreign model stops start-up.
   */
  static async load(file: TurnModelFile, options: TurnModelOptions = {}): Promise<SmartTurnModel> {
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
    const model = new SmartTurnModel(bytes, file.threads ?? 1, options);
    try {
      model.#attach(await startTurnWorker(bytes, model.#threads, model.#create));
    } catch (cause) {
      throw new ConfigError(`turn model at ${file.path} could not be loaded: ${errorMessage(cause)}`, { cause });
    }
    return model;
  }

  get health(): TurnModelHealth {
    return { state: this.#off ? 'off' : this.#worker ? 'up' : 'restarting', restarts: this.#restarts };
  }

  predict(audio: Float32Array, signal?: AbortSignal): Promise<TurnPrediction> {
    if (this.#off) return Promise.reject(this.#off);
    if (!this.#worker) return Promise.reject(new Error("the turn model's worker is restarting"));
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    return new Promise((resolve, reject) => {
      this.#queue.push({ id: this.#nextId++, audio, signal, requestedAt: performance.now(), resolve, reject });
      this.#next();
    });
  }

  /** Ends the worker (once its run in progress is over), and a restart on its way. */
  dispose(): Promise<void> {
    this.#disposed ??= (async () => {
      this.#off = new Error('the turn model was disposed');
      this.#rejectAll(this.#off);
      if (this.#restartTimer) clearTimeout(this.#restartTimer);
      const worker = this.#worker;
      this.#worker = null;
      // A restart in progress sees the dispose and closes its new worker itself.
      await Promise.all([worker && closeTurnWorker(worker), this.#restarting]);
    })();
    return this.#disposed;
  }

  #attach(worker: Worker): void {
    this.#worker = worker;
    worker.on('message', (reply: TurnWorkerReply) => this.#onReply(reply));
    worker.on('error', (error) => this.#lost(worker, `failed: ${errorMessage(error)}`));
    worker.on('exit', (code) => this.#lost(worker, `exited (code ${code})`));
    // An idle worker does not keep the process alive (one with a prediction running does). After the
    // listeners: adding a 'message' listener refs a worker again.
    worker.unref();
  }

  #next(): void {
    while (this.#worker && !this.#running && this.#queue.length > 0) {
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
    this.#worker?.unref();
    if (reply.type === 'verdict') {
      request.resolve({ probability: reply.probability, ms: performance.now() - request.requestedAt, featuresMs: reply.featuresMs, modelMs: reply.modelMs });
    } else {
      request.reject(new Error(`turn model: ${reply.message}`));
    }
    this.#next();
  }

  /** The live worker died (not by dispose): its requests fall back to the transcript cue, and a new one is started. */
  #lost(worker: Worker, what: string): void {
    // An 'error' is followed by its 'exit': the first of the two is the death.
    if (worker !== this.#worker || this.#off) return;
    this.#worker = null;
    this.#rejectAll(new Error(`the turn model's worker ${what}`));
    this.#restartLater(`worker ${what}`);
  }

  /** Counts a death against the bound, then either schedules a fresh worker or leaves the model off. */
  #restartLater(reason: string): void {
    const { maxRestarts, restartWindowMs, restartDelayMs } = this.#limits;
    const now = performance.now();
    this.#deaths = [...this.#deaths.filter((at) => now - at < restartWindowMs), now];
    if (this.#deaths.length > maxRestarts) {
      this.#off = new Error(`the turn model is off: its worker died ${this.#deaths.length} times within ${restartWindowMs / 1000} s`);
      this.#log.error('turn model off for the rest of this process: its worker keeps dying; the transcript cue decides every turn', {
        reason,
        deaths: this.#deaths.length,
        window_s: restartWindowMs / 1000,
        restarts: this.#restarts,
      });
      return;
    }
    const delayMs = restartDelayMs * 2 ** (this.#deaths.length - 1);
    this.#log.warn('turn model worker died; restarting it, the transcript cue decides turns until it is back', { reason, delay_ms: delayMs, restarts: this.#restarts });
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = null;
      this.#restarting = this.#restart();
    }, delayMs);
    // A pending restart does not keep the process alive.
    this.#restartTimer.unref();
  }

  /** Never rejects: a failed start counts as another death. */
  async #restart(): Promise<void> {
    this.#restarts++;
    let worker: Worker;
    try {
      worker = await startTurnWorker(this.#bytes, this.#threads, this.#create);
    } catch (error) {
      if (!this.#off) this.#restartLater(`restart failed: ${errorMessage(error)}`);
      return;
    }
    if (this.#off) return closeTurnWorker(worker);
    this.#attach(worker);
    this.#log.info('turn model worker restarted', { restarts: this.#restarts });
  }

  #rejectAll(error: Error): void {
    for (const request of [...(this.#running ? [this.#running] : []), ...this.#queue.splice(0)]) request.reject(error);
    this.#running = null;
  }
}
