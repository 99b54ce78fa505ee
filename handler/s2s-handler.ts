/**
 * The speech-to-speech job handler: validates the input contract, then runs the job's mode on
 * engines loaded once at start.
 */
import type { Server } from 'node:http';
import type { Logger } from '../src/log/logger.js';
import { SessionServer } from '../src/session/session-server.js';
import { loadEngines, type Engines } from '../src/pipeline/engines.js';
import { warmUpEngines } from '../src/pipeline/warm-up.js';
import { parseJobInput } from './job-input.js';
import { openPort } from './ports.js';
import type { PipelineConfig } from './pipeline-config.js';
import { readPipelineConfig } from './pipeline-config.js';
import type { HandlerDefinition, WorkerJob } from './runtime/types.js';
import { runLiveSession, runSessionJob } from './session-job.js';
import { runTurnJob } from './turn-job.js';

export interface S2sHandler extends HandlerDefinition {
  engines: Engines;
  config: PipelineConfig;
  /**
   * Serves live sessions on `/ws` and `/v1/realtime` of an HTTP server that exists already (the local API, the
   * load-balancing server) instead of a port of their own. With `standingToken`, every client
   * that presents it gets a new session (load-balancing endpoints). When `shutdown` aborts, those
   * sessions are warned and end after the grace, as a session job's do, and newcomers are refused.
   */
  serveSessionsOn(server: Server, standingToken: string | null, publicUrl?: string, shutdown?: AbortSignal): void;
  /** Resolves when every session opened with the standing token has ended. */
  standingSessionsEnded(): Promise<void>;
  /** Frees the engines (and stops the TTS server process and the session server). */
  dispose(): Promise<void>;
}

/** Session jobs' own port (S2S_SESSION_PORT); a taken one is a clear error naming the variable. */
function listenForSessions(config: PipelineConfig, log: Logger): Promise<SessionServer> {
  return openPort(() => SessionServer.listen(config.sessions.port, config.sessions.host, log), config.sessions.port, 'S2S_SESSION_PORT');
}

/** `listening`: the session port already opened (the queue worker opens it before the engines load). */
export function createHandlerFor(engines: Engines, config: PipelineConfig, log: Logger, listening?: SessionServer): S2sHandler {
  let sessions: Promise<SessionServer> | null = listening ? Promise.resolve(listening) : null;
  let publicUrl = config.sessions.publicUrl;
  const standingSessions = new Set<Promise<unknown>>();
  // A start that failed (port in use) is not kept: the next session job tries again.
  const sessionServer = () =>
    (sessions ??= listenForSessions(config, log).catch((error: unknown) => {
      sessions = null;
      throw error;
    }));
  return {
    engines,
    config,
    returnAggregateStream: true,
    serveSessionsOn(server, standingToken, url, shutdown) {
      if (url) publicUrl = url;
      const attached = SessionServer.attach(server, log);
      if (standingToken) {
        attached.setStandingToken(standingToken, (ws, connection) => {
          // A session that cannot start has told its client why and closed (and logged it).
          const running = runLiveSession(ws, connection, engines, config, {}, log, new AbortController().signal, shutdown).catch(() => undefined);
          standingSessions.add(running);
          void running.finally(() => standingSessions.delete(running));
        });
      }
      sessions = Promise.resolve(attached);
    },
    async standingSessionsEnded() {
      while (standingSessions.size > 0) await Promise.all(standingSessions);
    },
    async dispose() {
      // The engines (and the TTS server process) are freed whatever happens to the session server.
      try {
        await (await sessions?.catch(() => null))?.close();
      } finally {
        await engines.dispose();
      }
    },
    async *handle(job: WorkerJob, signal: AbortSignal) {
      const input = parseJobInput(job.input);
      if (input.mode === 'session') yield* runSessionJob(input, engines, config, await sessionServer(), publicUrl, job, signal);
      else yield* runTurnJob(input, engines, config, signal);
    },
  };
}

/**
 * Reads the pipeline config from the environment and loads every engine before the first job. With
 * `listenForSessions` (the queue worker), session jobs' port is opened first: a taken port stops the
 * start before minutes of model loading, not at the first session job.
 */
export async function createS2sHandler(context: { log: Logger; env: NodeJS.ProcessEnv; listenForSessions?: boolean }): Promise<S2sHandler> {
  const config = readPipelineConfig(context.env);
  const { devices } = config;
  context.log.info('devices', { llm_tts: devices.device, asr: devices.asr, asr_precision: devices.asrPrecision, why: devices.reason });
  for (const warning of config.warnings) context.log.warn(warning);
  const listening = context.listenForSessions ? await listenForSessions(config, context.log) : undefined;
  try {
    context.log.info('loading engines', { profile: config.profile, models_dir: config.modelsDir });
    const engines = await loadEngines(config.engines, context.log);
    if (config.warmUp) {
      try {
        await warmUpEngines(engines, context.log);
      } catch (error) {
        await engines.dispose();
        throw error;
      }
    }
    return createHandlerFor(engines, config, context.log, listening);
  } catch (error) {
    await listening?.close();
    throw error;
  }
}
