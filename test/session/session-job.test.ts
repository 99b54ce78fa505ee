/**
 * Session jobs on the test profile's real engines: bad settings are refused before anyone is
 * invited, a session that cannot start tells its client and frees what it opened, and waiting for a
 * client leaves nothing behind on the worker's long-lived shutdown signal.
 */
import { getEventListeners } from 'node:events';
import { createServer } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJobInput, type SessionJobInput } from '../../handler/job-input.js';
import type { WorkerJob } from '../../handler/runtime/types.js';
import { createHandlerFor, type S2sHandler } from '../../handler/s2s-handler.js';
import { runSessionJob, type SessionJobEvent } from '../../handler/session-job.js';
import { InvalidInputError } from '../../src/errors.js';
import { Logger } from '../../src/log/logger.js';
import type { Engines } from '../../src/pipeline/engines.js';
import { SessionServer } from '../../src/session/session-server.js';
import { ScriptedLlmDouble } from '../doubles/scripted-llm-double.js';
import { collect } from '../helpers/collect.js';
import { waitFor } from '../helpers/harness.js';
import { SessionClient } from '../helpers/session-client.js';
import { testProfileHandler } from '../helpers/test-profile.js';
import { freePort } from '../helpers/tts-sidecar.js';

const log = new Logger({ level: 'ERROR', jsonLines: true, write: () => undefined });
let handler: S2sHandler;
let sessions: SessionServer;
let url: string;

beforeAll(async () => {
  // One conversation (one LLM sequence): a conversation that leaks blocks every later job.
  handler = await testProfileHandler({ S2S_MAX_CONVERSATIONS: '1', S2S_SESSION_CONNECT_TIMEOUT_MS: '3000' }, undefined, { listenForSessions: true });
  sessions = await SessionServer.listen(0, '127.0.0.1', log);
  url = `ws://127.0.0.1:${sessions.port}/ws`;
}, 60_000);
afterAll(async () => {
  await sessions?.close();
  await handler?.dispose();
});

const workerJob = (overrides: Partial<WorkerJob> = {}): WorkerJob => ({ id: 'session-job', input: {}, log, progress: async () => undefined, ...overrides });
const sessionInput = (input: Record<string, unknown> = {}) => parseJobInput({ mode: 'session', ...input }) as SessionJobInput;
const sessionJob = (input: SessionJobInput, engines: Engines = handler.engines, job = workerJob(), signal = new AbortController().signal) =>
  runSessionJob(input, engines, handler.config, sessions, url, job, signal)[Symbol.asyncIterator]();
const invitationOf = (event: SessionJobEvent) => {
  if (event.type !== 'session') throw new Error(`expected the invitation, got ${event.type}`);
  return `${event.url}?token=${event.token}`;
};

describe('session job', () => {
  it('refuses endpointer settings that contradict the worker defaults before inviting anyone, naming vad.*', async () => {
    // 0.2 is below the worker's default release threshold (0.35).
    const events = sessionJob(sessionInput({ vad: { activation_threshold: 0.2 } }));
    const refused = events.next();
    await expect(refused).rejects.toThrow(InvalidInputError);
    await expect(refused).rejects.toThrow(
      "invalid input: the worker's vad.release_threshold default (0.35) must not exceed vad.activation_threshold (0.2)",
    );
    await expect(sessionJob(sessionInput({ vad: { activation_threshold: 0.4, release_threshold: 0.6 } })).next()).rejects.toThrow(
      'invalid input: vad.release_threshold (0.6) must not exceed vad.activation_threshold (0.4)',
    );
  });

  it('a turn job with the same settings fails naming the field, not with a bare RangeError', async () => {
    const job = workerJob({ input: { audio: Buffer.alloc(64).toString('base64'), audio_format: 'pcm16', sample_rate: 16_000, vad: { activation_threshold: 0.2 } } });
    await expect(collect(handler.handle(job, new AbortController().signal))).rejects.toThrow(/^invalid input: .*vad\.activation_threshold \(0\.2\)/);
  });

  it('a session that cannot start after its client connected tells the client, closes, and frees its conversation', async () => {
    const llm = new ScriptedLlmDouble({ replies: ['Hello.'] });
    const vad = {
      ...handler.engines.vad,
      openStream: () => {
        throw new Error('the VAD stream could not be opened');
      },
    };
    const events = sessionJob(sessionInput(), { ...handler.engines, llm, vad });
    const client = await SessionClient.connect(invitationOf((await events.next()).value as SessionJobEvent));
    await expect(events.next()).rejects.toThrow('the VAD stream could not be opened');
    expect(await client.waitFor((e) => e.type === 'error', 5_000)).toMatchObject({ code: 'SESSION_FAILED', message: 'the VAD stream could not be opened' });
    expect((await client.closed).code).toBe(1011);
    expect(llm.conversations).toHaveLength(1);
    expect(llm.conversations[0]!.disposed).toBe(true);
  });

  it('with every LLM slot in use, the client is told LLM_BUSY and the socket closed; the next job is served', async () => {
    const held = await handler.engines.llm.openConversation();
    const events = sessionJob(sessionInput());
    const client = await SessionClient.connect(invitationOf((await events.next()).value as SessionJobEvent));
    await expect(events.next()).rejects.toThrow(/LLM conversation slots are in use/);
    expect(await client.waitFor((e) => e.type === 'error', 5_000)).toMatchObject({ code: 'LLM_BUSY' });
    expect((await client.closed).code).toBe(1011);
    held.dispose();
    const next = sessionJob(sessionInput());
    const served = await SessionClient.connect(invitationOf((await next.next()).value as SessionJobEvent));
    const done = next.next(); // the job runs on while it is read
    await served.waitFor((e) => e.type === 'ready');
    served.send({ type: 'end' });
    expect((await done).value).toMatchObject({ type: 'done', reason: 'client_end' });
  });

  it('a client that leaves while its session is being set up is reported as client_left, not idle_timeout', async () => {
    const double = new ScriptedLlmDouble({ replies: ['Hello.'] });
    let left!: () => void;
    const clientLeft = new Promise<void>((resolve) => (left = resolve));
    // The conversation opens only after the client has gone.
    const llm = { openConversation: async () => (await clientLeft, double.openConversation()), dispose: async () => undefined };
    const events = sessionJob(sessionInput({ idle_timeout_ms: 1_000 }), { ...handler.engines, llm });
    const client = await SessionClient.connect(invitationOf((await events.next()).value as SessionJobEvent));
    const done = events.next();
    client.ws.close();
    await client.closed;
    left();
    expect((await done).value).toMatchObject({ type: 'done', reason: 'client_left' });
    await waitFor(() => double.conversations[0]?.disposed === true);
  });

  it('a stop that arrives while the invitation is being published ends the job at once', async () => {
    const stop = new AbortController();
    // The stop fires during `await job.progress(...)`, before the wait for a client begins.
    const job = workerJob({ progress: async () => stop.abort() });
    const events = sessionJob(sessionInput(), handler.engines, job, stop.signal);
    expect((await events.next()).value).toMatchObject({ type: 'session' });
    // Not SESSION_NOT_JOINED after the connect timeout: the stop was seen.
    expect(await events.next()).toEqual({ done: true, value: undefined });
  });

  it('sessions that connect and end leave no listener on the worker shutdown signal', async () => {
    // The whole path a session job takes on `job.shutdown`: the wait for a client, then the session.
    const shutdown = new AbortController();
    const before = getEventListeners(shutdown.signal, 'abort').length;
    for (let n = 0; n < 3; n++) {
      const events = sessionJob(sessionInput(), handler.engines, workerJob({ shutdown: shutdown.signal }));
      const client = await SessionClient.connect(invitationOf((await events.next()).value as SessionJobEvent));
      const done = events.next();
      await client.waitFor((e) => e.type === 'ready');
      client.send({ type: 'end' });
      expect((await done).value).toMatchObject({ type: 'done', reason: 'client_end' });
      await client.closed;
    }
    expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(before);
  });

  it('waiting for clients leaves no listener on the worker shutdown signal', async () => {
    const shutdown = new AbortController();
    const before = getEventListeners(shutdown.signal, 'abort').length;
    for (let n = 0; n < 12; n++) {
      const stop = new AbortController();
      const events = sessionJob(sessionInput(), handler.engines, workerJob({ shutdown: shutdown.signal }), stop.signal);
      await events.next(); // the invitation
      const ended = events.next();
      stop.abort(); // the job is cancelled before anyone connects
      expect(await ended).toEqual({ done: true, value: undefined });
    }
    expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(before);
  });
});

describe('s2s handler', () => {
  it('a session server that failed to start is tried again by the next session job, and dispose still frees the engines', async () => {
    const port = await freePort();
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve));
    let enginesDisposed = false;
    const engines: Engines = { ...handler.engines, dispose: async () => void (enginesDisposed = true) };
    const config = { ...handler.config, sessions: { ...handler.config.sessions, host: '127.0.0.1', port } };
    const s2s = createHandlerFor(engines, config, log);
    const job = workerJob({ input: { mode: 'session' } });
    await expect(s2s.handle(job, new AbortController().signal)[Symbol.asyncIterator]().next()).rejects.toThrow(new RegExp(`port ${port} \\(S2S_SESSION_PORT\\) is already in use`));
    await new Promise((resolve) => squatter.close(resolve));
    const stop = new AbortController();
    const events = s2s.handle(job, stop.signal)[Symbol.asyncIterator]();
    expect((await events.next()).value).toMatchObject({ type: 'session' });
    stop.abort();
    await events.next();
    await s2s.dispose();
    expect(enginesDisposed).toBe(true);

    // A handler whose only start failed also frees its engines.
    enginesDisposed = false;
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(port, '127.0.0.1', resolve));
    const failed = createHandlerFor(engines, config, log);
    await expect(failed.handle(job, new AbortController().signal)[Symbol.asyncIterator]().next()).rejects.toThrow(new RegExp(`port ${port} \\(S2S_SESSION_PORT\\) is already in use`));
    await failed.dispose();
    expect(enginesDisposed).toBe(true);
    await new Promise((resolve) => busy.close(resolve));
  });
});
