/**
 * Security: session tokens from a CSPRNG (>= 128 bits) and good for one connection; no token, API
 * key or audio in the logs; the TTS server on loopback only; size limits at the edges; and
 * `audio_url` refusing private, loopback, link-local and metadata addresses, through redirects and
 * DNS answers that change. All traffic stays on loopback: host names resolve through an injected
 * resolver (never the system's DNS), and addresses the test calls "public" are 127.0.0.1.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { readPipelineConfig } from '../../handler/pipeline-config.js';
import { createS2sHandler, type S2sHandler } from '../../handler/s2s-handler.js';
import { fetchAudio, isInternalAddress, SYSTEM_NETWORK, type AudioUrlNetwork } from '../../src/audio/fetch-audio.js';
import { Logger } from '../../src/log/logger.js';
import { API_KEY, startHarness, waitFor, type Harness } from '../helpers/harness.js';
import { testProfileEnv } from '../helpers/test-profile.js';
import { freePort } from '../helpers/tts-sidecar.js';
import { fastTtsEnv } from './load-scenario.js';
import { expectNoSecrets } from './secrets.js';
import { Tally } from './tally.js';

const tally = new Tally('security');
const logs: string[] = [];
const tokens: string[] = [];
const live = () => new AbortController().signal;
const closed = { maxBytes: 100_000, timeoutMs: 5_000, allowPrivateAddresses: false };

afterAll(() => {
  expectNoSecrets(logs, { values: [API_KEY, ...tokens], audio: true });
  tally.save(inject('robustnessDir'));
});

/** A server on `host` that counts the requests it gets. */
async function countingServer(host: string, handle: (path: string) => { status: number; headers?: Record<string, string>; body?: Buffer }) {
  const hits: string[] = [];
  const server: Server = createServer((req, res) => {
    hits.push(req.url ?? '');
    const answer = handle(req.url ?? '');
    res.writeHead(answer.status, answer.headers).end(answer.body);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return { hits, port: (server.address() as AddressInfo).port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

describe('audio_url and the addresses it may reach', () => {
  const internal = ['127.0.0.1', '127.8.9.10', '10.0.0.5', '172.20.1.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', '::', 'fd00::1', 'fe80::1', 'febf::1', '::ffff:10.0.0.1', '::ffff:7f00:1', '::ffff:a9fe:a9fe', '::127.0.0.1'];

  it('every private, loopback, link-local and metadata answer of a name is refused before any connection', async () => {
    for (const address of internal) {
      let resolved = 0;
      const network: AudioUrlNetwork = { resolve: async () => (resolved++, [address]), refuses: isInternalAddress };
      tally.add('badInputsTried');
      await expect(fetchAudio('http://audio.example.test/a.wav', closed, 'audio_url', live(), network), address).rejects.toThrow(`audio_url: audio.example.test resolves to ${address}, an internal address; such URLs are refused`);
      expect(resolved).toBe(1);
    }
    // One internal address among public ones is enough to refuse.
    const mixed: AudioUrlNetwork = { resolve: async () => ['198.51.100.7', '169.254.169.254'], refuses: isInternalAddress };
    await expect(fetchAudio('http://metadata.example.test/', closed, 'audio_url', live(), mixed)).rejects.toThrow(/169\.254\.169\.254, an internal address/);
    for (const literal of ['http://127.0.0.1/', 'http://[::1]/', 'http://[::ffff:7f00:1]/', 'http://169.254.169.254/latest/meta-data/']) {
      tally.add('badInputsTried');
      await expect(fetchAudio(literal, closed, 'audio_url', live())).rejects.toThrow(/an internal address; such URLs are refused/);
    }
    expect(['8.8.8.8', '1.1.1.1', '2001:4860:4860::8888', '::ffff:808:808'].some(isInternalAddress)).toBe(false);
  });

  // The policy below pretends 127.0.0.1 is public and 127.0.0.2 is inside, so both sides of a
  // redirect or a rebinding run on this machine. The production policy is isInternalAddress above.
  it('a redirect from an allowed host to an internal one is refused, and the internal server is never reached', async () => {
    const inside = await countingServer('127.0.0.2', () => ({ status: 200, body: Buffer.alloc(100) }));
    const outside = await countingServer('127.0.0.1', (path) =>
      path === '/to-name' ? { status: 302, headers: { location: `http://inside.example.test:${inside.port}/secret` } } : { status: 302, headers: { location: `http://127.0.0.2:${inside.port}/secret` } },
    );
    const names: Record<string, string> = { 'cdn.example.test': '127.0.0.1', 'inside.example.test': '127.0.0.2' };
    const network: AudioUrlNetwork = { resolve: async (host) => [names[host]!], refuses: (a) => a === '127.0.0.2' };
    try {
      for (const path of ['/to-name', '/to-literal']) {
        tally.add('badInputsTried');
        await expect(fetchAudio(`http://cdn.example.test:${outside.port}${path}`, closed, 'audio_url', live(), network)).rejects.toThrow(/127\.0\.0\.2, an internal address/);
      }
      expect(outside.hits).toEqual(['/to-name', '/to-literal']);
      expect(inside.hits).toEqual([]);
    } finally {
      await inside.close();
      await outside.close();
    }
  });

  it('a DNS answer that changes after the check cannot redirect the connection inside (one checked lookup per connection)', async () => {
    const inside = await countingServer('127.0.0.2', () => ({ status: 200, body: Buffer.alloc(100, 7) }));
    const outside = await countingServer('127.0.0.1', () => ({ status: 200, body: Buffer.alloc(50, 1) }));
    // Rebinding: the first answer is allowed, every later one points inside.
    let calls = 0;
    const network: AudioUrlNetwork = { resolve: async () => [calls++ === 0 ? '127.0.0.1' : '127.0.0.2'], refuses: (a) => a === '127.0.0.2' };
    try {
      const bytes = await fetchAudio(`http://rebind.example.test:${outside.port}/a.wav`, closed, 'audio_url', live(), network);
      expect(bytes.byteLength).toBe(50); // from the address that was checked
      expect(calls).toBe(1); // no second resolution between the check and the connection
      tally.add('badInputsTried');
      await expect(fetchAudio(`http://rebind.example.test:${outside.port}/a.wav`, closed, 'audio_url', live(), network)).rejects.toThrow(/127\.0\.0\.2, an internal address/);
      expect(calls).toBe(2);
      expect(inside.hits).toEqual([]);
      expect(outside.hits).toHaveLength(1);
    } finally {
      await inside.close();
      await outside.close();
    }
  });

  it('the production resolver is the system one and its policy is isInternalAddress', () => {
    expect(SYSTEM_NETWORK.refuses('10.1.2.3')).toBe(true);
    expect(SYSTEM_NETWORK.refuses('203.0.113.1')).toBe(false);
  });
});

describe('tokens, ports and limits of a running worker', () => {
  let s2s: S2sHandler;
  let harness: Harness;
  let ttsPort: number;
  beforeAll(async () => {
    const log = new Logger({ level: 'DEBUG', jsonLines: true, write: (line) => logs.push(line) });
    const tts = await fastTtsEnv();
    ttsPort = Number(tts['S2S_TTS_PORT']);
    s2s = await createS2sHandler({ log, env: await testProfileEnv({ ...tts, S2S_SESSION_PORT: String(await freePort()), S2S_SESSION_HOST: '127.0.0.1', S2S_MAX_CONVERSATIONS: '3' }), listenForSessions: true });
    harness = await startHarness({ handler: s2s });
  }, 60_000);
  afterAll(async () => {
    logs.push(...(harness?.logs ?? []));
    await harness?.close();
    await s2s?.dispose();
  });

  it('session tokens: >= 128 bits of base64url, all different, each good for one connection only', async () => {
    const ids: string[] = [];
    for (let n = 0; n < 3; n++) ids.push((await harness.endpoint.run({ input: { mode: 'session', idle_timeout_ms: 2_000 } })).id);
    const invitations = await Promise.all(ids.map((id) => waitFor(() => harness.api.job(id)?.stream[0] as { url: string; token: string } | undefined, 20_000)));
    tally.add('sessionsRun', 3);
    tally.add('jobsRun', 3);
    for (const { token } of invitations) {
      tokens.push(token);
      expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(Buffer.from(token, 'base64url').byteLength * 8).toBeGreaterThanOrEqual(128);
    }
    expect(new Set(tokens).size).toBe(3);
    const { url, token } = invitations[0]!;
    const { default: WebSocket } = await import('ws');
    const first = new WebSocket(`${url}?token=${token}`);
    await new Promise((resolve) => first.once('message', resolve)); // ready
    const second = new WebSocket(`${url}?token=${token}`);
    const refused = await new Promise<number>((resolve) => second.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
    expect(refused).toBe(401);
    tally.add('badInputsTried');
    first.close();
    for (const id of ids.slice(1)) await harness.endpoint.cancel(id);
    await waitFor(() => ids.every((id) => ['COMPLETED', 'CANCELLED', 'FAILED'].includes(harness.api.job(id)?.status ?? '')), 20_000);
  }, 60_000);

  it('the TTS server listens on loopback only, in the test profile and in production', () => {
    const listening = [...listeningSockets('/proc/net/tcp'), ...listeningSockets('/proc/net/tcp6')].filter((s) => s.port === ttsPort);
    expect(listening.length).toBeGreaterThan(0);
    expect(listening.every((s) => s.address === '127.0.0.1' || s.address === '::1')).toBe(true);
    const production = readPipelineConfig({ S2S_PROFILE: 'production', S2S_MODELS_DIR: '/nonexistent' }).engines.tts.sidecar;
    expect(production.host).toBe('127.0.0.1');
    expect(production.command.join(' ')).toContain('--host 127.0.0.1');
  });

  it('size limits at the edge: a 11 MB /run body is refused with 413, and the worker keeps serving', async () => {
    const response = await fetch(`${harness.api.baseUrl}/${harness.api.endpointId}/run`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}` },
      body: JSON.stringify({ input: { audio: 'A'.repeat(11 * 1024 * 1024) } }),
    });
    tally.add('badInputsTried');
    expect(response.status).toBe(413);
    expect(((await harness.endpoint.runSync({ input: { mode: 'karaoke' } }, 10_000)) as { error?: string }).error).toMatch(/mode/);
    tally.add('jobsRun');
  });
});

/** LISTEN sockets from /proc/net/tcp(6): local address and port, read without any traffic. */
function listeningSockets(file: string): { address: string; port: number }[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((cols) => cols[3] === '0A')
    .map((cols) => {
      const [hex, port] = cols[1]!.split(':') as [string, string];
      return { address: hex.length === 8 ? hexToIpv4(hex) : hexToIpv6(hex), port: parseInt(port, 16) };
    });
}

function hexToIpv4(hex: string): string {
  return [6, 4, 2, 0].map((i) => parseInt(hex.slice(i, i + 2), 16)).join('.');
}

function hexToIpv6(hex: string): string {
  // Four little-endian 32-bit words.
  const words = [0, 8, 16, 24].map((i) => hex.slice(i, i + 8).match(/../g)!.reverse().join(''));
  const full = words.join('').match(/.{4}/g)!.map((g) => parseInt(g, 16).toString(16)).join(':');
  return full === '0:0:0:0:0:0:0:1' ? '::1' : full === '0:0:0:0:0:0:0:0' ? '::' : full;
}
