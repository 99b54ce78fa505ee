/**
 * The speech-to-speech job handler: validates the input contract, then runs the job's mode on
 * engines loaded once at start.
 */
import { S2sError } from '../src/errors.js';
import type { Logger } from '../src/log/logger.js';
import { loadEngines, type Engines } from '../src/pipeline/engines.js';
import { parseJobInput } from './job-input.js';
import type { PipelineConfig } from './pipeline-config.js';
import { readPipelineConfig } from './pipeline-config.js';
import type { HandlerDefinition, WorkerJob } from './runtime/types.js';
import { runTurnJob } from './turn-job.js';

export interface S2sHandler extends HandlerDefinition {
  engines: Engines;
  config: PipelineConfig;
  /** Frees the engines (and stops the TTS server process). */
  dispose(): Promise<void>;
}

export function createHandlerFor(engines: Engines, config: PipelineConfig): S2sHandler {
  return {
    engines,
    config,
    returnAggregateStream: true,
    dispose: () => engines.dispose(),
    async *handle(job: WorkerJob, signal: AbortSignal) {
      const input = parseJobInput(job.input);
      if (input.mode === 'session') {
        throw new S2sError('NOT_AVAILABLE', 'mode "session" (live WebSocket sessions) is not available yet in this build; use mode "turn"');
      }
      yield* runTurnJob(input, engines, config, signal);
    },
  };
}

/** Reads the pipeline config from the environment and loads every engine before the first job. */
export async function createS2sHandler(context: { log: Logger; env: NodeJS.ProcessEnv }): Promise<S2sHandler> {
  const config = readPipelineConfig(context.env);
  context.log.info('loading engines', { profile: config.profile, models_dir: config.modelsDir });
  const engines = await loadEngines(config.engines, context.log);
  return createHandlerFor(engines, config);
}
