/**
 * Runs our TTS server (`python -m s2s_tts`, docs/tts-protocol.md) as a child process on loopback:
 * checks that its port is free, starts it, waits until `GET /config` answers from that very child
 * (its `pid`), reads its voices and limits, restarts it with backoff when it dies, and stops it
 * with the worker.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { ConfigError, S2sError } from '../errors.js';
import type { Logger } from '../log/logger.js';

export interface SidecarConfig {
  /** Program and arguments. */
  command: readonly string[];
  cwd?: string;
  /** Added to the worker's environment. */
  env?: Record<string, string>;
  host: string;
  port: number;
  /** How long a start may take before it counts as failed (model load included). */
  startupTimeoutMs: number;
  restartDelayMs: number;
  maxRestartDelayMs: number;
}

/** What the server's `GET /config` says about itself. */
export interface TtsServerInfo {
  engine: string;
  pid: number;
  sampleRate: number;
  voices: string[];
  defaultVoice: string;
  maxStreams: number;
}

/** The TTS port is held by another process: the worker cannot start its own server there (worded as the worker's other ports, handler/ports.ts). */
export class TtsPortTakenError extends ConfigError {
  constructor(host: string, port: number, detail: string) {
    super(`port ${port} (S2S_TTS_PORT) is already in use (${detail}): stop that process or set S2S_TTS_PORT to a free port for the TTS server on ${host}`);
  }
}

const POLL_MS = 100;

/**
 * The server must not outlive the worker: killed with SIGKILL (or crashing), the worker runs no
 * clean-up, and an orphaned server would keep its port, so the next start fails. Node cannot set
 * PR_SET_PDEATHSIG on a child itself; util-linux's `setpriv` sets it and then execs the server, so
 * the kernel kills the server when the worker dies. Without `setpriv`, the server is spawned as is.
 */
let pdeathsigWrapper: string[] | null | undefined;
function dieWithParent(): string[] | null {
  // Probed once per process: `null` (no setpriv) is an answer too, not a reason to probe again.
  if (pdeathsigWrapper === undefined) pdeathsigWrapper = spawnSync('setpriv', ['--version'], { stdio: 'ignore' }).status === 0 ? ['setpriv', '--pdeathsig', 'KILL', '--'] : null;
  return pdeathsigWrapper;
}
/** setpriv's exit status when it could not run the program. */
const EXEC_FAILED = 127;

export class TtsSidecar {
  readonly config: SidecarConfig;
  readonly #log: Logger;
  #child: ChildProcess | null = null;
  #ready: Promise<TtsServerInfo>;
  #server: TtsServerInfo | null = null;
  #stopping = false;
  #generation = 0;
  #restartDelayMs: number;
  /** While a crashed server waits to restart: ends that wait, failing ready() for whoever awaits it. */
  #cancelRestart: (() => void) | null = null;
  readonly #crashListeners = new Set<(error: S2sError) => void>();
  /** Last lines the server printed, for error messages. */
  #recentOutput: string[] = [];

  private constructor(config: SidecarConfig, log: Logger) {
    this.config = config;
    this.#log = log;
    this.#restartDelayMs = config.restartDelayMs;
    this.#ready = this.#launch();
  }

  /** Starts the server and resolves once it answers `/config`; rejects with a clear error after the start-up timeout. */
  static async start(config: SidecarConfig, log: Logger): Promise<TtsSidecar> {
    if (config.command.length === 0) throw new ConfigError('TTS sidecar command is empty');
    const sidecar = new TtsSidecar(config, log);
    try {
      await sidecar.#ready;
    } catch (error) {
      await sidecar.stop();
      throw error;
    }
    return sidecar;
  }

  get baseUrl(): string {
    return `http://${this.config.host}:${this.config.port}`;
  }

  /** The running server's /config (voices, limits, pid). */
  get server(): TtsServerInfo {
    if (!this.#server) throw new S2sError('TTS_NOT_READY', 'the TTS server has not answered /config yet');
    return this.#server;
  }

  /** Resolves when the server is up (at once, unless it is restarting). */
  ready(): Promise<TtsServerInfo> {
    return this.#ready;
  }

  /** Called when the server dies; in-flight utterances fail with the given error. */
  onCrash(listener: (error: S2sError) => void): () => void {
    this.#crashListeners.add(listener);
    return () => this.#crashListeners.delete(listener);
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    // Stopped while waiting to restart: no restart, no timer keeping the process alive, and the
    // ready() a synthesis may already be awaiting fails now.
    this.#cancelRestart?.();
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }

  async #launch(): Promise<TtsServerInfo> {
    // Something else on the port would answer our readiness checks, or make our server fail to bind.
    await this.#checkPortFree();
    return this.#spawn();
  }

  #checkPortFree(): Promise<void> {
    const { host, port } = this.config;
    return new Promise((resolve, reject) => {
      const probe = createServer();
      probe.once('error', (error: NodeJS.ErrnoException) => reject(error.code === 'EADDRINUSE' ? new TtsPortTakenError(host, port, 'another process listens on it') : error));
      probe.listen(port, host, () => probe.close(() => resolve()));
    });
  }

  #spawn(): Promise<TtsServerInfo> {
    const generation = ++this.#generation;
    const [program, ...args] = this.config.command;
    const started = performance.now();
    this.#log.info('TTS server starting', { command: this.config.command.join(' '), port: this.config.port });
    const wrapper = dieWithParent();
    const child = spawn(wrapper ? wrapper[0]! : program!, wrapper ? [...wrapper.slice(1), program!, ...args] : args, {
      cwd: this.config.cwd,
      env: { ...process.env, ...this.config.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#child = child;
    const remember = (data: Buffer) => {
      for (const line of data.toString().split('\n').filter(Boolean)) {
        this.#recentOutput.push(line);
        if (this.#recentOutput.length > 20) this.#recentOutput.shift();
        this.#log.debug('TTS server output', { line });
      }
    };
    child.stdout?.on('data', remember);
    child.stderr?.on('data', remember);
    let exited = false;
    const exitedEarly = new Promise<never>((_, reject) => {
      child.once('error', (error) => {
        exited = true; // the start-up poll stops too
        reject(new ConfigError(`TTS server could not be started (${program}): ${error.message}`));
      });
      child.once('exit', (code, signal) => {
        exited = true;
        const output = this.#recentOutput.slice(-3).join(' | ');
        if (wrapper && code === EXEC_FAILED) reject(new ConfigError(`TTS server could not be started (${program}): ${output}`));
        else reject(new S2sError('TTS_START_FAILED', `TTS server exited during start-up (code ${code}, signal ${signal}): ${output}`));
      });
    });
    exitedEarly.catch(() => undefined);
    child.once('exit', (code, signal) => this.#onExit(generation, code, signal));

    const ready = (async () => {
      const deadline = Date.now() + this.config.startupTimeoutMs;
      while (!exited) {
        const server = await this.#fetchConfig();
        if (server && server.pid !== child.pid) {
          // Another process's server answers on our port: never taken for ours. (The setpriv wrapper
          // execs the server, so our child's pid is the server's.)
          child.kill('SIGKILL');
          throw new TtsPortTakenError(this.config.host, this.config.port, `a TTS server with pid ${server.pid} answers there, ours is ${child.pid}`);
        }
        if (server) {
          this.#server = server;
          this.#restartDelayMs = this.config.restartDelayMs;
          this.#log.info('TTS server ready', {
            load_ms: Math.round(performance.now() - started),
            engine: server.engine,
            pid: server.pid,
            voices: server.voices.length,
            default_voice: server.defaultVoice,
            max_streams: server.maxStreams,
          });
          return server;
        }
        if (exited) break;
        if (Date.now() > deadline) {
          child.kill('SIGKILL');
          throw new S2sError('TTS_START_TIMEOUT', `TTS server did not answer ${this.baseUrl}/config within ${this.config.startupTimeoutMs} ms`);
        }
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
      return exitedEarly;
    })();
    return Promise.race([ready, exitedEarly]);
  }

  async #fetchConfig(): Promise<TtsServerInfo | null> {
    try {
      const response = await fetch(`${this.baseUrl}/config`, { signal: AbortSignal.timeout(2_000) });
      if (!response.ok) return null;
      const body = (await response.json()) as Record<string, unknown>;
      if (!Array.isArray(body['voices']) || typeof body['default_voice'] !== 'string') return null;
      return {
        engine: typeof body['engine'] === 'string' ? body['engine'] : 'unknown',
        // No pid: not a server of docs/tts-protocol.md, so never ours.
        pid: typeof body['pid'] === 'number' ? body['pid'] : -1,
        sampleRate: typeof body['sample_rate'] === 'number' ? body['sample_rate'] : 24_000,
        voices: body['voices'].filter((v): v is string => typeof v === 'string'),
        defaultVoice: body['default_voice'],
        maxStreams: typeof body['max_streams'] === 'number' ? body['max_streams'] : 1,
      };
    } catch {
      return null;
    }
  }

  #onExit(generation: number, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#stopping || generation !== this.#generation) return;
    const error = new S2sError('TTS_CRASHED', `TTS server exited (code ${code}, signal ${signal}); restarting it`, { retryable: true });
    this.#log.error('TTS server died', { code, signal, output: this.#recentOutput.slice(-3) });
    for (const listener of [...this.#crashListeners]) listener(error);
    const delay = this.#restartDelayMs;
    this.#restartDelayMs = Math.min(this.#restartDelayMs * 2, this.config.maxRestartDelayMs);
    this.#ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#cancelRestart = null;
        resolve();
      }, delay);
      this.#cancelRestart = () => {
        clearTimeout(timer);
        this.#cancelRestart = null;
        reject(new S2sError('TTS_STOPPED', 'the TTS server was stopped'));
      };
    }).then(() => this.#launch());
    // A failed restart is retried by the next exit handler; keep the rejection from going unhandled.
    this.#ready.catch((e: unknown) => this.#log.error('TTS server restart failed', { error: (e as Error).message }));
  }
}
