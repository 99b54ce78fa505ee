/**
 * Process start-up shared by the production entry (`main.ts`) and test workers: read config once,
 * build the handler, pick the mode (queue worker, local one-shot, local RunPod API), and turn
 * SIGTERM/SIGINT into a drain (a second signal exits at once).
 */
import { ConfigError } from '../src/errors.js';
import { Logger, errorMessage } from '../src/log/logger.js';
import { readStartMode, readWorkerConfig, type StartMode, type WorkerConfig } from './config.js';
import { runOneShot } from './local/one-shot.js';
import { HealthServer } from './local/health-server.js';
import { LocalRunpodApi } from './local/runpod-api.js';
import { startWebServer } from './local/static-files.js';
import type { HandlerDefinition } from './runtime/types.js';
import type { S2sHandler } from './s2s-handler.js';
import { QueueWorker } from './runtime/worker.js';

export interface StartOptions {
  argv: readonly string[];
  env: NodeJS.ProcessEnv;
  createHandler: (context: { log: Logger; config: WorkerConfig; env: NodeJS.ProcessEnv }) => Promise<HandlerDefinition & { dispose?(): Promise<void> }>;
}

/** Runs the process to its end and returns the exit code. */
export async function startWorkerProcess(options: StartOptions): Promise<number> {
  let config: WorkerConfig;
  let mode;
  try {
    config = readWorkerConfig(options.env);
    mode = readStartMode(options.argv, config);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`s2s-worker: ${error.message}\n`);
    return 2;
  }
  const log = new Logger({ level: config.logLevel, jsonLines: config.jsonLogs });
  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop.signal.aborted) {
      log.warn('second signal: exiting without waiting for jobs', { signal });
      process.exit(1);
    }
    log.info('signal received', { signal });
    stop.abort();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // A promise nobody awaited must not take the worker (and every job on it) down: log it loudly.
  process.on('unhandledRejection', (reason) => {
    log.error('unhandled promise rejection (a bug): worker keeps serving', { error: errorMessage(reason), stack: (reason as Error)?.stack });
  });

  // A load-balancing endpoint must answer /ping (204) while the models load.
  const health = config.healthPort !== null ? await HealthServer.start(config.healthPort) : null;
  let handler: HandlerDefinition & { dispose?(): Promise<void> };
  try {
    const loadStarted = performance.now();
    handler = await options.createHandler({ log, config, env: options.env });
    log.info('ready', { startup_ms: Math.round(performance.now() - loadStarted) });
  } catch (error) {
    log.error('start-up failed', { error: errorMessage(error) });
    if (health) health.state = 'failed';
    await health?.close();
    return 1;
  }
  if (health) {
    // Load-balancing endpoints: live sessions on /ws of the same server, for clients with the token.
    if (isSessionCapable(handler)) {
      handler.serveSessionsOn(health.httpServer, handler.config.sessions.standingToken);
      health.load = () => handler.conversations();
      if (!handler.config.sessions.standingToken) log.warn('S2S_SESSION_TOKEN is not set: /ws and /v1/realtime refuse every client');
    }
    health.state = 'ready';
  }
  try {
    if (stop.signal.aborted) return 0;
    return await runMode(mode, config, handler, log, stop.signal, options.env);
  } finally {
    await health?.close();
    await handler.dispose?.();
  }
}

async function runMode(mode: StartMode, config: WorkerConfig, handler: HandlerDefinition, log: Logger, stop: AbortSignal, env: NodeJS.ProcessEnv): Promise<number> {
  switch (mode.kind) {
    case 'load-balancer':
      // Serves /ping and live sessions on /ws (attached above) until SIGTERM.
      log.info('load-balancing mode: serving /ping, /ws and /v1/realtime', { port: config.healthPort });
      await new Promise<void>((resolve) => stop.addEventListener('abort', () => resolve(), { once: true }));
      return 0;
    case 'one-shot':
      return runOneShot(handler, mode.testInput, log, stop);
    case 'worker':
      await runQueueWorker(config, handler, log, stop);
      return 0;
    case 'serve-api': {
      const api = await LocalRunpodApi.start({ host: mode.host, port: mode.port, log });
      log.info('local RunPod API listening', { base_url: api.baseUrl, endpoint_id: api.endpointId });
      // Session jobs get their WebSocket on the same port locally (/ws).
      if (isSessionCapable(handler)) handler.serveSessionsOn(api.httpServer, null, `${api.url.replace(/^http/, 'ws')}/ws`);
      const web = config.webPort ? await startWebServer(config.webPort, mode.host) : null;
      if (web) log.info('browser client', { url: `http://${mode.host}:${config.webPort}/?api=${encodeURIComponent(api.baseUrl)}` });
      // The worker is wired to the local API exactly as on RunPod: through RUNPOD_WEBHOOK_* templates.
      const localConfig = readWorkerConfig({ ...env, ...api.workerEnv() });
      try {
        await runQueueWorker(localConfig, handler, log, stop);
      } finally {
        web?.closeAllConnections();
        web?.close();
        await api.close();
      }
      return 0;
    }
  }
}

async function runQueueWorker(config: WorkerConfig, handler: HandlerDefinition, log: Logger, stop: AbortSignal) {
  if (!config.platform) throw new ConfigError('queue worker needs RUNPOD_WEBHOOK_GET_JOB');
  const worker = new QueueWorker({ config: { ...config, platform: config.platform }, handler, log });
  stop.addEventListener('abort', () => worker.drain(), { once: true });
  if (stop.aborted) worker.drain();
  await worker.run();
}

function isSessionCapable(handler: HandlerDefinition): handler is S2sHandler {
  return 'serveSessionsOn' in handler;
}
