/**
 * The session core's limits, on the test profile's real engines: a client sending audio faster
 * than real time is stopped, one that takes no audio holds the pacer and is ended when stuck, a
 * session leaves no listener on the worker's shutdown signal, and a cut answer lets go of the
 * conversation before the next one starts.
 */
import { getEventListeners } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sessionOptions } from '../../handler/session-job.js';
import type { S2sHandler } from '../../handler/s2s-handler.js';
import { Logger } from '../../src/log/logger.js';
import { SessionCore, type CoreEvent, type SessionCoreOptions, type SessionSink, type SessionSummary } from '../../src/session/session-core.js';
import { ScriptedLlmDouble } from '../doubles/scripted-llm-double.js';
import { makeUtterance } from '../fixtures/speech.js';
import { waitFor } from '../helpers/harness.js';
import { SessionClient } from '../helpers/session-client.js';
import { testProfileHandler } from '../helpers/test-profile.js';

const TOKEN = 'session-limits-token-0123456789';
const log = new Logger({ level: 'ERROR', jsonLines: true, write: () => undefined });
let handler: S2sHandler;
let server: Server;
let url: string;

beforeAll(async () => {
  handler = await testProfileHandler({ S2S_SESSION_MAX_BACKLOG_MS: '2000' });
  server = createServer((_req, res) => res.writeHead(404).end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  handler.serveSessionsOn(server, TOKEN);
  url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/ws?token=${TOKEN}`;
}, 60_000);
afterAll(async () => {
  await handler?.dispose();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
});

/** A sink that records what the core says; `unread` plays the socket's buffer. */
function sinkDouble(unread: () => number = () => 0) {
  const events: CoreEvent[] = [];
  let audioBytes = 0;
  let resolveEnded!: (summary: SessionSummary) => void;
  const ended = new Promise<SessionSummary>((resolve) => (resolveEnded = resolve));
  const sink: SessionSink = {
    event: (event) => events.push(event),
    audio: (pcm) => (audioBytes += pcm.byteLength),
    ended: (summary) => resolveEnded(summary),
    unreadBytes: () => unread(),
  };
  return { sink, events, ended, audioBytes: () => audioBytes };
}

const coreOptions = (overrides: Partial<SessionCoreOptions> = {}): SessionCoreOptions => ({ ...sessionOptions(handler.config, {}, handler.engines.tts.voices), ...overrides });

describe('session limits', () => {
  it('a client sending audio much faster than real time is told AUDIO_BACKLOG and its session ends', async () => {
    const speech = await makeUtterance([{ say: 'This is far too much audio sent far too fast.' }, { silenceMs: 200 }]);
    const client = await SessionClient.connect(url);
    await client.waitFor((e) => e.type === 'ready');
    // About 30 s of audio in one burst; the worker allows 2 s to wait for processing.
    for (let n = 0; n < 10; n++) await client.sendAudio(speech.samples, { frameMs: 2_000 });
    expect(await client.waitFor((e) => e.type === 'error')).toMatchObject({ code: 'AUDIO_BACKLOG' });
    expect(await client.waitFor((e) => e.type === 'session_end')).toMatchObject({ reason: 'error' });
    expect((await client.closed).code).toBe(1000);
    // The worker serves the next session.
    const next = await SessionClient.connect(url);
    next.send({ type: 'ping' });
    await next.waitFor((e) => e.type === 'pong');
    next.ws.close();
  }, 30_000);

  it('manual turns: uncommitted audio beyond the longest turn is refused with AUDIO_BUFFER_FULL, the session goes on', async () => {
    const double = sinkDouble();
    const core = new SessionCore(handler.engines, await handler.engines.llm.openConversation(), coreOptions({ vad: { maxUtteranceMs: 2_000 } }), log, double.sink, new AbortController().signal);
    void core.run();
    core.setTurnDetection({ ...core.turnDetection, mode: 'manual' });
    const second = new Int16Array(16_000);
    core.pushAudio(second);
    core.pushAudio(second);
    expect(double.events.filter((e) => e.type === 'error')).toEqual([]);
    core.pushAudio(second); // 3 s > 2 s: refused, memory stays bounded
    expect(double.events.filter((e) => e.type === 'error')).toMatchObject([{ code: 'AUDIO_BUFFER_FULL' }]);
    expect(core.isEnded).toBe(false);
    core.clearAudio();
    core.pushAudio(second); // room again after a clear
    expect(double.events.filter((e) => e.type === 'error')).toHaveLength(1);
    core.end('client_end');
    await double.ended;
  });

  it('a client that takes no audio holds the pacer (nothing piles up) and its session ends when stuck', async () => {
    // Every byte sent stays unread: a client that never reads its socket.
    let sent = 0;
    const double = sinkDouble(() => sent);
    const conversation = await handler.engines.llm.openConversation();
    const limit = 24_000; // half a second of 24 kHz PCM16
    const core = new SessionCore(handler.engines, conversation, coreOptions({ maxUnreadBytes: limit, stuckMs: 1_000 }), log, { ...double.sink, audio: (pcm) => (sent += pcm.byteLength) }, new AbortController().signal);
    const summary = core.run();
    core.submitText('Tell me something.');
    expect((await summary).reason).toBe('error');
    expect(double.events).toContainEqual(expect.objectContaining({ type: 'error', code: 'CLIENT_NOT_READING' }));
    // Held once over the limit: at most one chunk (3200 samples) beyond it was sent.
    expect(sent).toBeGreaterThan(0);
    expect(sent).toBeLessThanOrEqual(limit + 3_200 * 2);
  }, 30_000);

  it('sessions leave no listener on the worker shutdown signal', async () => {
    const shutdown = new AbortController();
    const before = getEventListeners(shutdown.signal, 'abort').length;
    for (let n = 0; n < 12; n++) {
      const double = sinkDouble();
      const core = new SessionCore(handler.engines, await handler.engines.llm.openConversation(), coreOptions(), log, double.sink, new AbortController().signal, shutdown.signal);
      const summary = core.run();
      core.end('client_end');
      await summary;
    }
    expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(before);
  });

  it('an answer cut by the next turn lets go of the conversation before the next answer starts', async () => {
    const llm = new ScriptedLlmDouble({ replies: ['This first answer goes on and on for quite a while, it really does.', 'Second answer.'], deltaChars: 6, delayMs: 150 });
    const conversation = await llm.openConversation();
    const double = sinkDouble();
    const core = new SessionCore({ ...handler.engines, llm }, conversation, coreOptions(), log, double.sink, new AbortController().signal);
    const summary = core.run();
    core.submitText('First question.');
    await waitFor(() => double.events.some((e) => e.type === 'answer_text'), 20_000);
    core.submitText('Second question.'); // cuts the first answer
    await waitFor(() => double.events.some((e) => e.type === 'answer_done' && e.turn === 1), 20_000);
    expect(double.events.filter((e) => e.type === 'answer_done').map((e) => e.type === 'answer_done' && [e.turn, e.status])).toEqual([
      [0, 'interrupted'],
      [1, 'completed'],
    ]);
    expect(llm.conversations[0]!.maxConcurrentReplies).toBe(1);
    core.end('client_end');
    await summary;
  }, 30_000);
});
