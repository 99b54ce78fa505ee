/**
 * The browser client in headless Chromium, with a WAV of espeak-ng speech as its microphone:
 * the page (served on the web port) starts a session job through the local API, streams the
 * microphone to the worker and plays the answer. Everything real but the models (test profile).
 * Needs Debian's chromium (`apt-get install -y chromium`); no browser is ever downloaded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeUtterance, wavOf } from '../fixtures/speech.js';
import { waitFor } from '../helpers/harness.js';
import { testProfileEnv } from '../helpers/test-profile.js';
import { freePort } from '../helpers/tts-sidecar.js';

let worker: ChildProcess;
let browser: Browser;
let apiPort: number;
let webPort: number;
let micFile: string;
let workerLog = '';

beforeAll(async () => {
  apiPort = await freePort();
  webPort = await freePort();
  const utterance = await makeUtterance([{ silenceMs: 1000 }, { say: 'What is the capital of France?' }, { silenceMs: 4000 }]);
  micFile = join(await mkdtemp(join(tmpdir(), 's2s-mic-')), 'question.wav');
  await writeFile(micFile, wavOf(utterance.samples, 16_000));
  worker = spawn(process.execPath, ['dist/handler.mjs', '--rp_serve_api', '--rp_api_port', String(apiPort)], {
    env: { ...process.env, ...(await testProfileEnv({ S2S_WEB_PORT: String(webPort) })) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  worker.stderr!.on('data', (d: Buffer) => (workerLog += d.toString()));
  await waitFor(() => workerLog.includes('worker started'), 30_000);
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      `--use-file-for-fake-audio-capture=${micFile}`,
      '--autoplay-policy=no-user-gesture-required',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  worker?.kill('SIGTERM');
  if (worker) await new Promise((resolve) => worker.once('exit', resolve));
});

describe('browser client', () => {
  it('talks through the microphone and plays the spoken answer', async () => {
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(`http://127.0.0.1:${webPort}/?api=${encodeURIComponent(`http://127.0.0.1:${apiPort}/v2`)}&autostart=1`);
    // The whole answer has been played out when its metrics arrive.
    await page.waitForFunction(() => (globalThis as unknown as { s2s: { events: { type: string }[] } }).s2s.events.some((e) => e.type === 'metrics'), undefined, {
      timeout: 30_000,
    });
    const state = await page.evaluate(
      () =>
        (globalThis as unknown as { s2s: { status: string; transcripts: string[]; partials: string[]; responses: string[]; latencyBars: Record<string, number>[]; audioSamples: number } })
          .s2s,
    );
    expect(state.transcripts).toContain('hello world');
    // Words shown while the user spoke, and where the answer's time went.
    expect(state.partials.length).toBeGreaterThan(0);
    // One bar per answer that reached first audio, each split into at least endpoint, models and overhead.
    const withAudio = await page.evaluate(
      () => (globalThis as unknown as { s2s: { events: { type: string; first_audio_ms?: number }[] } }).s2s.events.filter((e) => e.type === 'metrics' && (e.first_audio_ms ?? 0) > 0).length,
    );
    expect(state.latencyBars).toHaveLength(withAudio);
    for (const bar of state.latencyBars) expect(Object.keys(bar)).toEqual(expect.arrayContaining(['endpoint', 'overhead']));
    expect(await page.locator('.bar span').count()).toBeGreaterThanOrEqual(3 * withAudio);
    expect(state.responses.join(' ')).toContain('tiny model');
    expect(state.audioSamples).toBeGreaterThan(24_000);
    expect(state.status).toBe('listening');
    expect(pageErrors).toEqual([]);
    await page.screenshot({ path: join(tmpdir(), 's2s-browser-client.png') });
    await page.click('#stop');
    await page.close();
  }, 60_000);
});
