/**
 * Process start-up shared by the production entry (`main.ts`) and test workers: read config once,
 * build the handler, pick the mode (queue worker, local one-shot, local RunPod API), and turn
 * SIGTERM/SIGINT into a drain (a second signal exits at once).
 */
import type { Server } from 'node:http';
import { ConfigError } from '../src/errors.js';
import { Logger, errorMessage } from '../src/log/logger.js';
import { readStartMode, readWorkerConfig, type StartMode, type WorkerConfig } from './config.js';
import { runOneShot } from './local/one-shot.js';
import { HealthServer } from './local/health-server.js';
import { LocalRunpodApi } from './local/runpod-api.js';
import { startWebServer } from './local/static-files.js';
import { openPort } from './ports.js';
import type { HandlerDefinition } from './runtime/types.js';
import type { S2sHandler } from './s2s-handler.js';
import { QueueWorker } from './runtime/worker.js';

export interface StartOptions {
  argv: readonly string[];
  env: NodeJS.ProcessEnv;
  createHandler: (context: HandlerContext) => Promise<HandlerDefinition & { dispose?(): Promise<void> }>;
}

export interface HandlerContext {
  log: Logger;
  config: WorkerConfig;
  env: NodeJS.ProcessEnv;
  /**
   * The queue worker on RunPod: session jobs' own port is opened before the engines load, so a
   * taken port stops the start (elsewhere sessions share another server, or it opens on demand).
   */
  listenForSessions: boolean;
}

/** The ports of the chosen mode, opened before the engines load so a taken one stops the start at once. */
interface OpenPorts {
  health: HealthServer | null;
  api: LocalRunpodApi | null;
  web: Server | null;
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

  const ports: OpenPorts = { health: null, api: null, web: null };
  let handler: HandlerDefinition & { dispose?(): Promise<void> };
  try {
    await openPorts(ports, mode, config, options.env, log);
    const loadStarted = performance.now();
    handler = await options.createHandler({ log, config, env: options.env, listenForSessions: mode.kind === 'worker' });
    log.info('ready', { startup_ms: Math.round(performance.now() - loadStarted) });
  } catch (error) {
    log.error('start-up failed', { error: errorMessage(error) });
    if (ports.health) ports.health.state = 'failed';
    await closePorts(ports);
    return 1;
  }
  const { health } = ports;
  if (health) {
    // Load-balancing endpoints: live sessions on /ws of the same server, for clients with the token.
    if (isSessionCapable(handler)) {
      handler.serveSessionsOn(health.httpServer, handler.config.sessions.standingToken, undefined, stop.signal);
      if (!handler.config.sessions.standingToken) log.warn('S2S_SESSION_TOKEN is not set: /ws and /v1/realtime refuse every client');
    }
    health.state = 'ready';
  }
  try {
    if (stop.signal.aborted) return 0;
    return await runMode(mode, config, handler, log, stop.signal, options.env, ports);
  } finally {
    // The handler first: it closes the live sessions' sockets, which would keep the server's close waiting.
    try {
      await handler.dispose?.();
    } finally {
      await closePorts(ports);
    }
  }
}

async function openPorts(ports: OpenPorts, mode: StartMode, config: WorkerConfig, env: NodeJS.ProcessEnv, log: Logger): Promise<void> {
  // A load-balancing endpoint must answer /ping (204) while the models load.
  if (config.healthPort !== null) {
    const port = config.healthPort;
    ports.health = await openPort(() => HealthServer.start(port), port, env['PORT_HEALTH'] ? 'PORT_HEALTH' : 'PORT');
  }
  if (mode.kind === 'serve-api') {
    ports.api = await openPort(() => LocalRunpodApi.start({ host: mode.host, port: mode.port, log }), mode.port, '--rp_api_port');
    if (config.webPort) ports.web = await openPort(() => startWebServer(config.webPort, mode.host), config.webPort, 'S2S_WEB_PORT');
  }
}

async function closePorts(ports: OpenPorts): Promise<void> {
  ports.web?.closeAllConnections();
  ports.web?.close();
  await ports.api?.close();
  await ports.health?.close();
}

async function runMode(mode: StartMode, config: WorkerConfig, handler: HandlerDefinition, log: Logger, stop: AbortSignal, env: NodeJS.ProcessEnv, ports: OpenPorts): Promise<number> {
  switch (mode.kind) {
    case 'load-balancer':
      // Serves /ping and live sessions on /ws (attached above) until SIGTERM.
      log.info('load-balancing mode: serving /ping, /ws and /v1/realtime', { port: config.healthPort });
      await new Promise<void>((resolve) => stop.addEventListener('abort', () => resolve(), { once: true }));
      // The live sessions were warned by the same signal (WORKER_SHUTTING_DOWN) and end after the grace.
      if (isSessionCapable(handler)) {
        log.info('draining: waiting for live sessions to end');
        await handler.standingSessionsEnded();
      }
      return 0;
    case 'one-shot':
      return runOneShot(handler, mode.testInput, log, stop);
    case 'worker':
      await runQueueWorker(config, handler, log, stop);
      return 0;
    case 'serve-api': {
      const api = ports.api!;
      log.info('local RunPod API listening', { base_url: api.baseUrl, endpoint_id: api.endpointId });
      // Session jobs get their WebSocket on the same port locally (/ws).
      if (isSessionCapable(handler)) handler.serveSessionsOn(api.httpServer, null, `${api.url.replace(/^http/, 'ws')}/ws`);
      if (ports.web) log.info('browser client', { url: `http://${mode.host}:${config.webPort}/?api=${encodeURIComponent(api.baseUrl)}` });
      // The worker is wired to the local API exactly as on RunPod: through RUNPOD_WEBHOOK_* templates.
      const localConfig = readWorkerConfig({ ...env, ...api.workerEnv() });
      await runQueueWorker(localConfig, handler, log, stop);
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
