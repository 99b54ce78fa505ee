/**
 * Hostile socket traffic on the native `/ws` and the Realtime endpoint, generated from a seed: random binary and text frames,
 * invalid UTF-8, oversized frames, bad opcodes and mixed text and binary frames in one write,
 * before and after auth; events out of order; a client that never reads; one that sends faster
 * than real time; hundreds of connections with bad or no tokens. Each ends in an error event or a
 * clean close, the process never crashes, and a good session right after works.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { WebSocket } from 'ws';
import type { S2sHandler } from '../../handler/s2s-handler.js';
import { float32ToPcm16 } from '../../src/audio/pcm.js';
import { Logger } from '../../src/log/logger.js';
import { MAX_AUDIO_FRAME_BYTES } from '../../src/session/protocol.js';
import { speak } from '../fixtures/speech.js';
import { clientFrame, OPCODE, RawWebSocket } from '../helpers/raw-websocket.js';
import { expectSessionServed } from '../helpers/session-client.js';
import { testProfileHandler } from '../helpers/test-profile.js';
import { fuzzFrame, Rng } from './fuzz.js';
import { fastTtsEnv } from './load-scenario.js';
import { expectNoSecrets } from './secrets.js';
import { openFileDescriptors, robustnessSeed, Tally } from './tally.js';

const TOKEN = 'socket-fuzz-token-0123456789abcdef';
const MAX_PAYLOAD = MAX_AUDIO_FRAME_BYTES * 2;
const tally = new Tally('socket-fuzz');
const seed = robustnessSeed();
const logs: string[] = [];
let handler: S2sHandler;
let server: Server;
let port: number;
let speech: Int16Array;

beforeAll(async () => {
  const log = new Logger({ level: 'DEBUG', jsonLines: true, write: (line) => logs.push(line) });
  handler = await testProfileHandler({ S2S_SESSION_IDLE_MS: '3000', S2S_LLM_CONVERSATIONS: '8', ...(await fastTtsEnv()) }, log);
  server = createServer((_req, res) => res.writeHead(404).end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  handler.serveSessionsOn(server, TOKEN);
  port = (server.address() as AddressInfo).port;
  speech = float32ToPcm16(await speak('Tell me a story.'));
}, 60_000);
afterAll(async () => {
  await handler?.dispose();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  expectNoSecrets(logs, { values: [TOKEN], audio: true });
  tally.save(inject('robustnessDir'));
});

/** Resolves true when the connection closed within `ms` (a bound on liveness, not a speed goal). */
async function closedWithin(ws: RawWebSocket, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const closed = await Promise.race([ws.closed.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)))]);
  clearTimeout(timer);
  return closed;
}

async function until(probe: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

async function goodSessionWorks(): Promise<void> {
  await expectSessionServed(`ws://127.0.0.1:${port}/ws?token=${TOKEN}`);
  tally.add('sessionsRun');
}

const frames = (rng: Rng) => Array.from({ length: 1 + rng.int(3) }, () => fuzzFrame(rng, MAX_PAYLOAD));

describe('generated frames', () => {
  it('before auth: every connection is closed (unauthorized or protocol error), in batches of 20 at once', async () => {
    const rng = new Rng(seed + 10);
    for (let batch = 0; batch < 3; batch++) {
      const cases = Array.from({ length: 20 }, () => frames(rng));
      const outcomes = await Promise.all(
        cases.map(async (specs) => {
          const { ws } = await RawWebSocket.open(port, '/ws');
          // Several frames in one TCP write: the server reads them from one buffer.
          ws.write(...specs.map((f) => clientFrame(f.opcode, f.payload)));
          tally.add('badInputsTried', specs.length);
          const closed = await closedWithin(ws, 8_000); // the auth timeout is 5 s
          ws.destroy();
          return { closed, names: specs.map((f) => f.name).join(' + ') };
        }),
      );
      expect(outcomes.filter((o) => !o.closed)).toEqual([]);
    }
    await goodSessionWorks();
  }, 60_000);

  it('after auth: each case ends in error events with the session alive, or a close; never a crash', async () => {
    const rng = new Rng(seed + 11);
    const outcomes = { alive: 0, closed: 0 };
    // Four at once: each session holds one of the LLM's conversation slots.
    for (let batch = 0; batch < 4; batch++) {
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          const { ws } = await RawWebSocket.open(port, `/ws?token=${TOKEN}`);
          tally.add('sessionsRun');
          expect(await until(() => ws.texts().some((e) => e.type === 'ready'), 10_000)).toBe(true);
          const specs = frames(rng);
          tally.add('badInputsTried', specs.length);
          ws.write(...specs.map((f) => clientFrame(f.opcode, f.payload)), clientFrame(OPCODE.text, JSON.stringify({ type: 'ping' })));
          const settled = await until(() => ws.isClosed || ws.messages.some((m) => m.opcode === OPCODE.close) || ws.texts().some((e) => e.type === 'pong'), 10_000);
          expect(settled, specs.map((f) => f.name).join(' + ')).toBe(true);
          if (ws.texts().some((e) => e.type === 'pong')) outcomes.alive++;
          else outcomes.closed++;
          // Errors say what was wrong.
          for (const error of ws.texts().filter((e) => e.type === 'error')) expect(error['message']).toEqual(expect.any(String));
          ws.destroy();
        }),
      );
    }
    expect(outcomes.alive + outcomes.closed).toBe(16);
    await goodSessionWorks();
  }, 90_000);

  it('events out of order: end before audio, auth after auth, config and text mid-answer, audio after end', async () => {
    const { ws } = await RawWebSocket.open(port, `/ws?token=${TOKEN}`);
    tally.add('sessionsRun');
    await until(() => ws.texts().some((e) => e.type === 'ready'), 10_000);
    const text = (message: unknown) => clientFrame(OPCODE.text, JSON.stringify(message));
    ws.write(text({ type: 'auth', token: TOKEN }), text({ type: 'config', temperature: 0.1 }), text({ type: 'text', text: 'Hello?' }));
    await until(() => ws.texts().some((e) => e.type === 'response_start'), 20_000);
    ws.write(text({ type: 'config', voice: 'en-Emma_woman' }), text({ type: 'text', text: 'And again?' }), text({ type: 'end' }), clientFrame(OPCODE.binary, new Uint8Array(speech.buffer, 0, 6400)));
    tally.add('badInputsTried', 7);
    expect(await closedWithin(ws, 20_000)).toBe(true);
    expect(ws.texts().filter((e) => e.type === 'session_end')).toHaveLength(1);
    await goodSessionWorks();
  }, 60_000);
});

/** Realtime client events of the wrong shape, out of order, or carrying junk audio. */
function realtimeJunk(rng: Rng): unknown {
  return rng.pick<unknown>([
    { type: 'input_audio_buffer.append', audio: '!!!not base64!!!' },
    { type: 'input_audio_buffer.append', audio: 'A' },
    { type: 'input_audio_buffer.append', audio: Buffer.from(rng.bytes(3)).toString('base64') },
    { type: 'input_audio_buffer.append' },
    { type: 'input_audio_buffer.commit' },
    { type: 'response.cancel' },
    { type: 'response.create', response: { max_output_tokens: -5 } },
    { type: 'conversation.item.truncate', item_id: 'nope', content_index: 0, audio_end_ms: -1 },
    { type: 'conversation.item.retrieve', item_id: 'x'.repeat(10_000) },
    { type: 'conversation.item.create', item: { type: 'message', role: 'system', content: 42 } },
    { type: 'session.update', session: { audio: { input: { format: { type: 'audio/flac' } } } } },
    { type: 'session.update', session: { instructions: 'x'.repeat(40_000) } },
    { type: 'session.update', session: JSON.parse('{"__proto__":{"polluted":true}}') },
    { type: 'no.such.event' },
    { type: 42 },
    [],
    'text',
  ]);
}

describe('the Realtime endpoint (/v1/realtime)', () => {
  it('no token or a bad one is refused at the upgrade; junk frames and events after auth end in error events or a close', async () => {
    const refusedHeaders: Record<string, string>[] = [{}, { authorization: 'Bearer wrong-token' }, { 'sec-websocket-protocol': 'realtime, openai-insecure-api-key.wrong' }];
    for (const headers of refusedHeaders) {
      const { status, ws } = await RawWebSocket.open(port, '/v1/realtime', headers);
      tally.add('badInputsTried');
      expect(status).toBe(401);
      ws.destroy();
    }
    const rng = new Rng(seed + 12);
    const outcomes = { alive: 0, closed: 0 };
    for (let batch = 0; batch < 2; batch++) {
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          const { status, ws } = await RawWebSocket.open(port, '/v1/realtime', { authorization: `Bearer ${TOKEN}`, 'sec-websocket-protocol': 'realtime' });
          expect(status).toBe(101);
          tally.add('sessionsRun');
          expect(await until(() => ws.texts().some((e) => e.type === 'session.created'), 10_000)).toBe(true);
          const events = Array.from({ length: 2 + rng.int(4) }, () => clientFrame(OPCODE.text, JSON.stringify(realtimeJunk(rng))));
          const raw = rng.chance(0.4) ? frames(rng).map((f) => clientFrame(f.opcode, f.payload)) : [];
          tally.add('badInputsTried', events.length + raw.length);
          ws.write(...events, ...raw, clientFrame(OPCODE.text, JSON.stringify({ type: 'session.update', session: {} })));
          const settled = await until(() => ws.isClosed || ws.messages.some((m) => m.opcode === OPCODE.close) || ws.texts().some((e) => e.type === 'session.updated'), 10_000);
          expect(settled).toBe(true);
          if (ws.texts().some((e) => e.type === 'session.updated')) outcomes.alive++;
          else outcomes.closed++;
          ws.destroy();
        }),
      );
    }
    expect(outcomes.alive + outcomes.closed).toBe(8);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    await goodSessionWorks();
  }, 90_000);

  const openRealtime = async (): Promise<RawWebSocket> => {
    const { status, ws } = await RawWebSocket.open(port, '/v1/realtime', { authorization: `Bearer ${TOKEN}` });
    expect(status).toBe(101);
    tally.add('sessionsRun');
    expect(await until(() => ws.texts().some((e) => e.type === 'session.created'), 10_000)).toBe(true);
    return ws;
  };

  it('a Realtime client sending five minutes of audio at once is told so and closed', async () => {
    const ws = await openRealtime();
    tally.add('badInputsTried');
    try {
      // 300 appends of 1 s of 24 kHz PCM16 in one write: far faster than real time.
      const append = clientFrame(OPCODE.text, JSON.stringify({ type: 'input_audio_buffer.append', audio: Buffer.alloc(48_000).toString('base64') }));
      ws.write(...Array.from({ length: 300 }, () => append));
      const tooFast = () => ws.texts().some((e) => e.type === 'error' && /backlog|real-time/i.test(JSON.stringify(e['error'])));
      expect(await until(tooFast, 15_000)).toBe(true);
      expect(await closedWithin(ws, 10_000)).toBe(true);
    } finally {
      ws.destroy();
    }
    await goodSessionWorks();
  }, 60_000);

  it('a Realtime client that never reads while an answer streams: the session still ends, others are served', async () => {
    const ws = await openRealtime();
    ws.write(
      clientFrame(OPCODE.text, JSON.stringify({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Hello there.' }] } })),
      clientFrame(OPCODE.text, JSON.stringify({ type: 'response.create' })),
    );
    ws.pause();
    await goodSessionWorks();
    // The idle timeout (3 s) or the stuck-client limit ends it though nobody reads; read again to see the close.
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    ws.resume();
    expect(await closedWithin(ws, 40_000)).toBe(true);
    ws.destroy();
  }, 90_000);
});

describe('clients that misbehave over time', () => {
  it('hundreds of connections with a bad token, a bad auth message or none: all refused, none kept open', async () => {
    const fdsBefore = openFileDescriptors();
    const kinds = ['bad token in the URL', 'bad auth message', 'silent'] as const;
    const refused = { 'bad token in the URL': 0, 'bad auth message': 0, silent: 0 };
    // All at once: the silent ones wait out the 5 s auth timeout together.
    for (let batch = 0; batch < 1; batch++) {
      await Promise.all(
        Array.from({ length: 300 }, async (_, i) => {
          const kind = kinds[(batch * 300 + i) % 3]!;
          tally.add('badInputsTried');
          const { status, ws } = await RawWebSocket.open(port, kind === 'bad token in the URL' ? `/ws?token=wrong-${i}-${'x'.repeat(i)}` : '/ws');
          if (kind === 'bad token in the URL') {
            if (status === 401) refused[kind]++;
          } else {
            if (kind === 'bad auth message') ws.write(clientFrame(OPCODE.text, JSON.stringify({ type: 'auth', token: `${TOKEN.slice(0, -1)}X` })));
            await closedWithin(ws, 8_000);
            if (ws.messages.some((m) => m.opcode === OPCODE.close && m.payload.readUInt16BE(0) === 4401)) refused[kind]++;
          }
          ws.destroy();
        }),
      );
    }
    expect(refused).toEqual({ 'bad token in the URL': 100, 'bad auth message': 100, silent: 100 });
    await goodSessionWorks();
    // Every refused socket was released (a few fds of slack for the runtime's own).
    expect(await until(() => openFileDescriptors() <= fdsBefore + 10, 5_000)).toBe(true);
  }, 90_000);

  // Issue 21 item 9: an upgrade to another path was never answered or closed, so its socket stayed
  // (CLOSE-WAIT once the client left) and held a descriptor for good.
  it('upgrades to any other path: HTTP 404 and the socket closed by the server, though the client keeps it open (issue 21 item 9)', async () => {
    const openConnections = () => new Promise<number>((resolve) => server.getConnections((_error, n) => resolve(n)));
    const before = await openConnections();
    // The `ws` client, as a real client meets it.
    const wsClient = new WebSocket(`ws://127.0.0.1:${port}/other`);
    const status = await new Promise<number | string>((resolve) => {
      const timer = setTimeout(() => resolve('no answer within 5 s'), 5_000);
      wsClient.once('unexpected-response', (_req, res) => {
        clearTimeout(timer);
        resolve(res.statusCode ?? 0);
      });
      wsClient.once('error', () => undefined);
    });
    tally.add('badInputsTried');
    expect(status).toBe(404);
    wsClient.terminate();
    // Generated paths, raw, all at once; none of these clients closes its end.
    const rng = new Rng(seed + 90);
    const fixed = ['/', '/other', '/ws/', '/WS', '/wss', '/v1', '/v1/realtime/x', '/v1/realtimex', '/ws%2f', '/ws;x', `/${'a'.repeat(2_000)}`];
    const paths = [...fixed, ...Array.from({ length: 40 }, () => `/${rng.bytes(1 + rng.int(12)).toString('hex')}${rng.chance(0.5) ? `?token=${TOKEN}` : ''}`)];
    const outcomes = await Promise.all(
      paths.map(async (path) => {
        tally.add('badInputsTried');
        const answer = await Promise.race([RawWebSocket.open(port, path), new Promise<null>((resolve) => setTimeout(() => resolve(null), 5_000))]);
        if (!answer) return `${path}: no answer`;
        const closed = await closedWithin(answer.ws, 5_000);
        answer.ws.destroy();
        return answer.status === 404 && closed ? 'refused and closed' : `${path}: status ${answer.status}, closed by the server ${closed}`;
      }),
    );
    expect(outcomes.filter((o) => o !== 'refused and closed')).toEqual([]);
    // Every refused socket was released on the server's side too.
    let after = await openConnections();
    for (let i = 0; i < 50 && after > before; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      after = await openConnections();
    }
    expect(after).toBeLessThanOrEqual(before);
    await goodSessionWorks();
  }, 30_000);

  it('a client that never reads: the session still ends (idle timeout) and others are served meanwhile', async () => {
    const { ws } = await RawWebSocket.open(port, `/ws?token=${TOKEN}`);
    tally.add('sessionsRun');
    await until(() => ws.texts().some((e) => e.type === 'ready'), 10_000);
    const silence = new Int16Array(16_000 * 0.8);
    ws.write(clientFrame(OPCODE.binary, new Uint8Array(speech.buffer)), clientFrame(OPCODE.binary, new Uint8Array(silence.buffer)));
    ws.pause();
    await goodSessionWorks();
    // Idle timeout of 3 s after the last audio: the server ends the session though nobody reads.
    // A paused socket cannot see the close, so read again after the timeout and find it there.
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    ws.resume();
    expect(await closedWithin(ws, 15_000)).toBe(true);
    expect(ws.texts().filter((e) => e.type === 'session_end')).toHaveLength(1);
  }, 60_000);

  // Defect 6 (issue 14): the incoming audio queue had no cap, so a client sending much faster than
  // real time grew memory without limit. Now it is told (AUDIO_BACKLOG) and closed.
  it('a client sending five minutes of audio at once is told so and closed (defect 6)', async () => {
    const { ws } = await RawWebSocket.open(port, `/ws?token=${TOKEN}`);
    tally.add('sessionsRun');
    tally.add('badInputsTried');
    try {
      await until(() => ws.texts().some((e) => e.type === 'ready'), 10_000);
      const frame = clientFrame(OPCODE.binary, new Uint8Array(MAX_AUDIO_FRAME_BYTES)); // 2 s each
      ws.write(...Array.from({ length: 150 }, () => frame));
      const tooFast = () => ws.texts().some((e) => e.type === 'error' && /audio|real time|fast|backlog/i.test(String(e['message'])));
      expect(await until(tooFast, 3_000)).toBe(true);
      expect(await closedWithin(ws, 5_000)).toBe(true);
    } finally {
      ws.destroy();
    }
  }, 30_000);
});
