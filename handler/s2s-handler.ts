/**
 * The speech-to-speech job handler: validates the input contract, then runs the job's mode.
 * Engines are loaded once by `createS2sHandler` before the worker takes its first job.
 */
import { S2sError } from '../src/errors.js';
import type { Logger } from '../src/log/logger.js';
import { parseJobInput } from './job-input.js';
import type { HandlerDefinition, WorkerJob } from './runtime/types.js';

export interface S2sHandlerOptions {
  log: Logger;
}

export async function createS2sHandler(options: S2sHandlerOptions): Promise<HandlerDefinition> {
  options.log.debug('handler ready');
  return {
    returnAggregateStream: true,
    async *handle(job: WorkerJob, signal: AbortSignal) {
      const input = parseJobInput(job.input);
      signal.throwIfAborted();
      // The speech pipeline (VAD, ASR, LLM, TTS) lands stage by stage; until a mode's stages are
      // all present its jobs fail with this plain message instead of pretending to answer.
      throw new S2sError('NOT_AVAILABLE', `mode "${input.mode}" is not available yet in this build: the speech pipeline is not wired in`);
      yield* [];
    },
  };
}
