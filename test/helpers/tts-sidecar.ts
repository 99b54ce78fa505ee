/**
 * Our TTS server (`python -m s2s_tts`, tts-server/) with its espeak-ng engine double, as the test
 * profile runs it, for tests that start the real TtsSidecar manager themselves or give the worker
 * their own server command (frames faster or slower than the default, a smaller stream limit).
 */
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { TtsSidecar, type SidecarConfig, type TtsServerInfo } from '../../src/tts/sidecar.js';
import type { TtsServerHandle } from '../../src/tts/tts-client.js';
import type { Logger } from '../../src/log/logger.js';
import { ttsPython as registryTtsPython } from '../../src/models/registry.js';

export async function freePort(): Promise<number> {
  return new Promise((done, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
  });
}

export interface EspeakServerOptions {
  /** The double's pause per frame (a "model step"), ms; its default is 20. */
  frameMs?: number;
  maxStreams?: number;
}

/** The Python the test profile runs the server with (S2S_TTS_PYTHON, the checkout's venv, else python3), as the worker picks it. */
export function ttsPython(): string {
  return registryTtsPython(process.cwd(), process.env['S2S_TTS_PYTHON'], existsSync);
}

/** The server with the espeak-ng double on `port`; `env` execs the server, so the pid stays the one we spawned. */
export function espeakServerCommand(port: number, options: EspeakServerOptions = {}): string[] {
  return [
    'env',
    `PYTHONPATH=${resolve('tts-server', 'src')}`,
    `S2S_TTS_DOUBLE_FRAME_MS=${options.frameMs ?? 20}`,
    ttsPython(),
    '-m',
    's2s_tts',
    '--engine',
    'espeak-double',
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--max-streams',
    String(options.maxStreams ?? 4),
  ];
}

export async function doubleSidecarConfig(options: EspeakServerOptions = {}, overrides: Partial<SidecarConfig> = {}): Promise<SidecarConfig> {
  const port = overrides.port ?? (await freePort());
  return {
    command: espeakServerCommand(port, options),
    host: '127.0.0.1',
    port,
    startupTimeoutMs: 20_000,
    restartDelayMs: 100,
    maxRestartDelayMs: 2_000,
    ...overrides,
  };
}

export async function startDoubleSidecar(log: Logger, options: EspeakServerOptions = {}, overrides: Partial<SidecarConfig> = {}): Promise<TtsSidecar> {
  return TtsSidecar.start(await doubleSidecarConfig(options, overrides), log);
}

/** The worker env for its own TTS server: the espeak-ng double on a free port, with these options. */
export async function espeakTtsEnv(options: EspeakServerOptions = {}): Promise<Record<string, string>> {
  const port = await freePort();
  return { S2S_TTS_PORT: String(port), S2S_TTS_COMMAND: JSON.stringify(espeakServerCommand(port, options)) };
}

/** The pid of the TTS server answering on `port` (from its /config). */
export async function ttsServerPid(port: number): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${port}/config`);
  return ((await response.json()) as { pid: number }).pid;
}

/** A server someone else runs (the worker's own, in a test), for a second client beside the worker's. */
export async function attachedServer(port: number): Promise<TtsServerHandle> {
  const body = (await (await fetch(`http://127.0.0.1:${port}/config`)).json()) as { engine: string; pid: number; sample_rate: number; voices: string[]; default_voice: string; max_streams: number };
  const server: TtsServerInfo = { engine: body.engine, pid: body.pid, sampleRate: body.sample_rate, voices: body.voices, defaultVoice: body.default_voice, maxStreams: body.max_streams };
  return { config: { host: '127.0.0.1', port }, server, ready: async () => server, onCrash: () => () => undefined, stop: async () => undefined };
}
