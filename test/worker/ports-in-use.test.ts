/**
 * Issue 21 item 12 (the worker's own ports): a port the worker needs that another process holds
 * stops start-up at once with one clear line naming the port and the variable (or flag) that moves
 * it, and exit code 1: never `ready` followed by an unhandled EADDRINUSE, never a worker that runs
 * without it. The TTS server's port too: another process's server there is never taken for ours
 * (its readiness is checked by the pid of the child the worker spawned).
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalRunpodApi } from '../../handler/local/runpod-api.js';
import { testProfileEnv } from '../helpers/test-profile.js';
import { Logger } from '../../src/log/logger.js';
import { TtsSidecar } from '../../src/tts/sidecar.js';
import { doubleSidecarConfig, espeakTtsEnv, freePort } from '../helpers/tts-sidecar.js';

const blockers: Server[] = [];
let api: LocalRunpodApi | null = null;
afterEach(async () => {
  for (const server of blockers.splice(0)) await new Promise((resolve) => server.close(resolve));
  await api?.close();
  api = null;
});

/** Another process's server on `port`, on every address (so any bind of the worker's collides). */
async function occupy(): Promise<number> {
  const port = await freePort();
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(port, '0.0.0.0', resolve));
  blockers.push(server);
  return port;
}

/** Runs the bundled worker; its exit code, or 'still running' after `ms` (then it is killed). */
async function runWorker(args: string[], env: Record<string, string>, ms = 30_000): Promise<{ code: number | string; stderr: string }> {
  const child = spawn(process.execPath, ['dist/handler.mjs', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([
    new Promise<number>((resolve) => child.once('exit', (c) => resolve(c ?? -1))),
    new Promise<string>((resolve) => (timer = setTimeout(() => resolve('still running'), ms))),
  ]);
  clearTimeout(timer);
  if (code === 'still running') {
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
  }
  return { code, stderr };
}

function expectOneClearLine(stderr: string, port: number, mover: string): void {
  const lines = stderr.split('\n').filter((line) => line.includes(String(port)));
  expect(lines, stderr).toHaveLength(1);
  expect(lines[0]).toContain(`port ${port} (${mover}) is already in use`);
  expect(stderr).not.toMatch(/\bready\b/);
  expect(stderr).not.toMatch(/\n\s+at /);
}

describe('a port the worker needs is taken', () => {
  it('the session port of a queue worker (S2S_SESSION_PORT)', async () => {
    api = await LocalRunpodApi.start({ port: 0 });
    const port = await occupy();
    const { code, stderr } = await runWorker([], { ...(await testProfileEnv({ S2S_SESSION_PORT: String(port) })), ...api.workerEnv() });
    expect(code).toBe(1);
    expectOneClearLine(stderr, port, 'S2S_SESSION_PORT');
  }, 60_000);

  it('the load-balancing port (PORT)', async () => {
    const port = await occupy();
    const { code, stderr } = await runWorker([], await testProfileEnv({ PORT: String(port), S2S_SESSION_TOKEN: 'ports-test-token-0123456789' }));
    expect(code).toBe(1);
    expectOneClearLine(stderr, port, 'PORT');
  }, 60_000);

  it('the local API (--rp_api_port)', async () => {
    const port = await occupy();
    const { code, stderr } = await runWorker(['--rp_serve_api', '--rp_api_port', String(port)], await testProfileEnv({ S2S_WEB_PORT: '0' }));
    expect(code).toBe(1);
    expectOneClearLine(stderr, port, '--rp_api_port');
  }, 60_000);

  it('the TTS server port (S2S_TTS_PORT), even when a TTS server of the same protocol answers there', async () => {
    api = await LocalRunpodApi.start({ port: 0 });
    // A foreign server speaking our protocol: before, its /config answer was taken for our server's.
    const env = await espeakTtsEnv();
    const port = Number(env['S2S_TTS_PORT']);
    const foreign = await TtsSidecar.start(await doubleSidecarConfig({}, { port }), new Logger({ level: 'ERROR', jsonLines: true, write: () => undefined }));
    try {
      const { code, stderr } = await runWorker([], { ...(await testProfileEnv({ S2S_TTS_PORT: String(port) })), ...api.workerEnv() });
      expect(code).toBe(1);
      expectOneClearLine(stderr, port, 'S2S_TTS_PORT');
    } finally {
      await foreign.stop();
    }
  }, 60_000);

  it('the browser client (S2S_WEB_PORT)', async () => {
    const port = await occupy();
    const { code, stderr } = await runWorker(['--rp_serve_api', '--rp_api_port', String(await freePort())], await testProfileEnv({ S2S_WEB_PORT: String(port) }));
    expect(code).toBe(1);
    expectOneClearLine(stderr, port, 'S2S_WEB_PORT');
  }, 60_000);
});
