/**
 * The README's quick start and the Realtime snippets (the README's and docs/realtime.md's), run as a
 * new user would (issue 21 items 13 and 15): the worker is started with the README's own command
 * line for other ports (`S2S_WEB_PORT=... S2S_TTS_PORT=... npm run start:test -- --rp_api_port ...`,
 * the ports swapped for free ones); the README's Realtime snippet is run as written, and each of
 * docs/realtime.md's pasted after its snippet that gets a session job's token, with 127.0.0.1:8005
 * (and the Twilio app's 5050) swapped for the test's ports. Nothing else in the snippets is changed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { makeUtterance, run } from '../fixtures/speech.js';
import { freePort } from '../helpers/tts-sidecar.js';

const README = readFileSync('README.md', 'utf8');
const REALTIME_DOC = readFileSync('docs/realtime.md', 'utf8');

/** The fenced js/ts blocks of `doc` between two markers. */
function blocksOf(doc: string, from: string, to: string): string[] {
  expect(doc.indexOf(from), from).toBeGreaterThanOrEqual(0);
  const text = doc.slice(doc.indexOf(from), doc.indexOf(to, doc.indexOf(from)));
  return [...text.matchAll(/```(?:js|ts)\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

const frontPage = blocksOf(README, '**3. OpenAI Realtime clients.**', '## What it measures');
const realtime = blocksOf(REALTIME_DOC, '# OpenAI Realtime API', 'What the server does:');
const tools = blocksOf(REALTIME_DOC, '## Tool calling', '- Qwen2.5');
const [tokenSnippet, agentsSnippet, openaiSnippet, twilioSnippet, bridgeSnippet] = realtime;
const toolSnippet = tools[0];

let apiPort: number;
let webPort: number;
let worker: ChildProcess;
let workerLog = '';
let snippetDir: string;

beforeAll(async () => {
  // The README's command line for other ports, with free ones.
  const line = /`(S2S_WEB_PORT=(\d+) S2S_TTS_PORT=(\d+) npm run start:test -- --rp_api_port (\d+))`/.exec(README);
  expect(line, 'the quick start says how to move the ports').not.toBeNull();
  const [, command, web, tts, api] = line!;
  apiPort = await freePort();
  webPort = await freePort();
  const moved = command!.replace(`S2S_WEB_PORT=${web}`, `S2S_WEB_PORT=${webPort}`).replace(`S2S_TTS_PORT=${tts}`, `S2S_TTS_PORT=${await freePort()}`).replace(`--rp_api_port ${api}`, `--rp_api_port ${apiPort}`);
  const modelsDir = await mkdtemp(join(tmpdir(), 's2s-readme-models-'));
  // Its own process group, so the npm, shell and node processes all get the signal.
  worker = spawn('bash', ['-c', moved], { env: { ...process.env, S2S_MODELS_DIR: modelsDir }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  worker.stdout!.on('data', (d: Buffer) => (workerLog += d.toString()));
  worker.stderr!.on('data', (d: Buffer) => (workerLog += d.toString()));
  const deadline = Date.now() + 150_000;
  while (!workerLog.includes('worker started')) {
    if (Date.now() > deadline || worker.exitCode !== null) throw new Error(`the worker did not start:\n${workerLog}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  // Snippets import the project's packages: a folder beside them with node_modules and ES modules.
  snippetDir = await mkdtemp(join(tmpdir(), 's2s-readme-snippets-'));
  await symlink(resolve('node_modules'), join(snippetDir, 'node_modules'));
  await writeFile(join(snippetDir, 'package.json'), '{"type":"module"}\n');
}, 180_000);

afterAll(async () => {
  if (worker && worker.exitCode === null) {
    const exited = new Promise((r) => worker.once('exit', r));
    process.kill(-worker.pid!, 'SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (worker.exitCode === null) process.kill(-worker.pid!, 'SIGKILL');
  }
  if (snippetDir) await rm(snippetDir, { recursive: true, force: true });
});

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number>;
}

/** Runs the token snippet followed by `snippet` (or `snippet` alone, with `alone`), with the test's ports. */
async function runSnippet(name: string, snippet: string, ports: Record<string, string> = {}, alone = false): Promise<Run> {
  let code = (alone ? snippet : `${tokenSnippet}\n${snippet}`).replaceAll('127.0.0.1:8005', `127.0.0.1:${apiPort}`);
  for (const [from, to] of Object.entries(ports)) code = code.replaceAll(from, to);
  const file = join(snippetDir, `${name}.ts`);
  await writeFile(file, code);
  const child = spawn(process.execPath, ['--import', 'tsx', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number>((r) => child.once('exit', (c) => r(c ?? -1)));
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

async function exitsWithin(run: Run, ms: number): Promise<number | string> {
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([run.exited, new Promise<string>((r) => (timer = setTimeout(() => r('still running'), ms)))]);
  clearTimeout(timer);
  if (code === 'still running') run.child.kill('SIGKILL');
  return code;
}

async function until(probe: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

describe('the README, as a new user runs it', () => {
  it('npm run start:test moves to other ports as the quick start says: the API and the browser client answer there (item 13)', async () => {
    const health = await fetch(`http://127.0.0.1:${apiPort}/v2/local/health`, { headers: { authorization: 'Bearer any-key' } });
    expect(health.status).toBe(200);
    expect(workerLog).toContain(`127.0.0.1:${apiPort}`);
    const page = await fetch(`http://127.0.0.1:${webPort}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<html');
  });

  it("the Realtime snippets: the README's one, and the token snippet and four client snippets of docs/realtime.md, with no placeholder left", () => {
    expect(frontPage).toHaveLength(1);
    expect(realtime).toHaveLength(5);
    expect(tokenSnippet).toContain("mode: 'session'");
    for (const snippet of [...frontPage, ...realtime, toolSnippet!]) expect(snippet).not.toMatch(/<host>|<port>|pcm24kFrame|\bplay\(/);
  });

  it("the README's Realtime snippet, as written, answers and exits", async () => {
    const run = await runSnippet('front-page', frontPage[0]!, {}, true);
    expect(await exitsWithin(run, 60_000), run.stderr()).toBe(0);
    expect(run.stdout()).toMatch(/tiny model/);
    expect(run.stdout()).toMatch(/bytes of 24 kHz PCM16/);
    expect(run.stderr()).toBe('');
  }, 90_000);

  it('the Agents SDK snippet answers and exits', async () => {
    const run = await runSnippet('agents', agentsSnippet!);
    expect(await exitsWithin(run, 60_000), run.stderr()).toBe(0);
    expect(run.stdout()).toMatch(/tiny model/);
    expect(run.stdout()).toMatch(/[1-9][\d.]* s of audio/);
    expect(run.stderr()).toBe('');
  }, 90_000);

  it('the openai SDK snippet prints the answer text and exits', async () => {
    const run = await runSnippet('openai', openaiSnippet!);
    expect(await exitsWithin(run, 60_000), run.stderr()).toBe(0);
    expect(run.stdout()).toMatch(/tiny model/);
    expect(run.stderr()).toBe('');
  }, 90_000);

  it('the tool-calling snippet calls get_weather and exits', async () => {
    const run = await runSnippet('tools', toolSnippet!);
    expect(await exitsWithin(run, 60_000), run.stderr()).toBe(0);
    expect(run.stdout()).toMatch(/get_weather/);
  }, 90_000);

  it('the hand-written bridge snippet connects and its session takes the G.711 config', async () => {
    const run = await runSnippet('bridge', bridgeSnippet!);
    try {
      expect(await until(() => run.stdout().includes('session.updated'), 30_000), run.stdout() + run.stderr()).toBe(true);
      expect(run.stdout()).not.toMatch(/^error$/m);
    } finally {
      run.child.kill('SIGKILL');
    }
  }, 60_000);

  it('the Twilio snippet: a simulated call (20 ms mu-law media) gets spoken media back', async () => {
    const appPort = await freePort();
    const run = await runSnippet('twilio', twilioSnippet!, { 'port: 5050': `port: ${appPort}` });
    try {
      const listening = () =>
        new Promise<boolean>((r) => {
          const probe = connect(appPort, '127.0.0.1');
          probe.once('connect', () => {
            probe.destroy();
            r(true);
          });
          probe.once('error', () => r(false));
        });
      const deadline = Date.now() + 30_000;
      while (!(await listening())) {
        if (Date.now() > deadline) throw new Error(`the Twilio app did not listen: ${run.stderr()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const twilio = new WebSocket(`ws://127.0.0.1:${appPort}/media-stream`);
      const fromApp: { event: string }[] = [];
      twilio.on('message', (data) => fromApp.push(JSON.parse(data.toString()) as { event: string }));
      await new Promise((r) => twilio.once('open', r));
      twilio.send(JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' }));
      const start = { streamSid: 'MZ0001', callSid: 'CA0001', tracks: ['inbound'], mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 } };
      twilio.send(JSON.stringify({ event: 'start', sequenceNumber: '1', start, streamSid: 'MZ0001' }));
      const utterance = await makeUtterance([{ silenceMs: 300 }, { say: 'What is the capital of France?' }, { silenceMs: 1000 }], 8_000);
      const mulaw = await mulawOf(utterance.samples);
      // Silence while the app starts its session job, then the question, in real time.
      const silence = Buffer.alloc(160, 0xff).toString('base64');
      const send = (payload: string, chunk: number) => twilio.send(JSON.stringify({ event: 'media', sequenceNumber: String(chunk + 1), media: { track: 'inbound', chunk: String(chunk), timestamp: String(chunk * 20), payload }, streamSid: 'MZ0001' }));
      let chunk = 1;
      for (; chunk <= 100; chunk++) {
        send(silence, chunk);
        await new Promise((r) => setTimeout(r, 20));
      }
      for (let at = 0; at < mulaw.length; at += 160, chunk++) {
        send(mulaw.subarray(at, at + 160).toString('base64'), chunk);
        if (chunk % 10 === 0) await new Promise((r) => setTimeout(r, 5));
      }
      expect(await until(() => fromApp.filter((m) => m.event === 'media').length > 10, 40_000), JSON.stringify(fromApp.slice(0, 3)) + run.stderr()).toBe(true);
      twilio.close();
      expect(run.stderr()).toBe('');
    } finally {
      run.child.kill('SIGKILL');
    }
  }, 90_000);
});

/** mu-law 8 kHz bytes, encoded by sox (not by our codec). */
function mulawOf(samples: Float32Array): Promise<Buffer> {
  return run('sox', ['-t', 'raw', '-e', 'floating-point', '-b', '32', '-c', '1', '-r', '8000', '-', '-t', 'raw', '-e', 'mu-law', '-b', '8', '-c', '1', '-r', '8000', '-'], Buffer.from(samples.buffer));
}
