/** Starts the real TtsSidecar manager with the VibeVoice protocol double as its server. */
import { createServer } from 'node:net';
import { TtsSidecar, type SidecarConfig } from '../../src/tts/sidecar.js';
import type { Logger } from '../../src/log/logger.js';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export async function doubleSidecarConfig(flags: string[] = [], overrides: Partial<SidecarConfig> = {}): Promise<SidecarConfig> {
  const port = await freePort();
  return {
    command: [process.execPath, '--import', 'tsx', 'test/doubles/vibevoice-server-double.ts', '--port', String(port), ...flags],
    host: '127.0.0.1',
    port,
    startupTimeoutMs: 20_000,
    restartDelayMs: 100,
    maxRestartDelayMs: 2_000,
    ...overrides,
  };
}

export async function startDoubleSidecar(log: Logger, flags: string[] = [], overrides: Partial<SidecarConfig> = {}): Promise<TtsSidecar> {
  return TtsSidecar.start(await doubleSidecarConfig(flags, overrides), log);
}
