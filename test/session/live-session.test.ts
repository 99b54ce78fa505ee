/**
 * Live sessions over WebSocket on the test profile's real engines: a spoken turn answered with
 * audio paced at playback speed, barge-in (a blip pauses then resumes; real speech interrupts and
 * becomes the next turn), typed turns, auth, bad frames and the idle timeout.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { S2sHandler } from '../../handler/s2s-handler.js';
import { sessionOptions } from '../../handler/session-job.js';
import { respond } from '../../src/pipeline/respond.js';
import { collect } from '../helpers/collect.js';
import { makeUtterance, type Utterance } from '../fixtures/speech.js';
import { SessionClient } from '../helpers/session-client.js';
import { testProfileHandler } from '../helpers/test-profile.js';

const TOKEN = 'test-session-token-0123456789';
let handler: S2sHandler;
let server: Server;
let url: string;
let question: Utterance;
let blip: Utterance;
let interruption: Utterance;
/** Samples of the whole answer to a question, outside any session (its length varies a little: see below). */
let fullAnswerSamples: number;
/**
 * Every sample of the answer the TTS made reached the client: its metrics count what the TTS made.
 * (The espeak double speaks the text in pieces as it arrives, so one answer's length varies by a few
 * frames with the LLM's timing; the audio the session delivered is checked against its own answer.)
 */
const expectAllDelivered = (client: SessionClient, metrics: { [k: string]: unknown }) => expect(client.audioSamples()).toBe(Math.round(((metrics['audio_out_ms'] as number) * 24_000) / 1000));

beforeAll(async () => {
  handler = await testProfileHandler({ S2S_SESSION_IDLE_MS: '3000', S2S_MIN_INTERRUPTION_MS: '400' });
  server = createServer((_req, res) => res.writeHead(404).end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  handler.serveSessionsOn(server, TOKEN);
  url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/ws`;
  question = await makeUtterance([{ silenceMs: 300 }, { say: 'What is the capital of France?' }, { silenceMs: 600 }]);
  blip = await makeUtterance([{ say: 'Oh.' }, { silenceMs: 600 }]);
  interruption = await makeUtterance([{ say: 'Wait, wait, I have another question for you.' }, { silenceMs: 600 }]);
  // The whole answer's audio as the pipeline makes it outside any session (the tiny model always
  // gives the same reply): every test compares what its session delivered with it.
  const options = sessionOptions(handler.config, {}, handler.engines.tts.voices);
  const conversation = await handler.engines.llm.openConversation();
  const reference = respond(conversation, handler.engines.tts, 'What is the capital of France?', { signal: new AbortController().signal, ...options });
  await collect(reference.items);
  conversation.dispose();
  fullAnswerSamples = reference.timings.audioSamples;
}, 60_000);
afterAll(async () => {
  await handler?.dispose();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
});

const connect = () => SessionClient.connect(`${url}?token=${TOKEN}`);

/** A session in which the question has been asked and the answer is being played. */
async function connectWhileAnswering(): Promise<SessionClient> {
  const client = await connect();
  await client.sendAudio(question.samples);
  await client.waitForAudio();
  await new Promise((resolve) => setTimeout(resolve, 300));
  return client;
}

describe('live session', () => {

  it('answers a spoken turn: events in order, audio paced at playback speed, metrics', async () => {
    const client = await connect();
    await client.waitFor((e) => e.type === 'ready');
    await client.sendAudio(question.samples);
    const metrics = await client.waitFor((e) => e.type === 'metrics');
    // Deltas and the words-so-far while the user spoke aside, the events come in this order.
    const order = client.events().map((e) => e.type).filter((t) => t !== 'text' && t !== 'partial_transcript');
    expect(order).toEqual(['ready', 'speech_start', 'speech_end', 'transcript', 'response_start', 'metrics']);
    expect(client.events('transcript')[0]).toEqual({ type: 'transcript', turn: 0, text: 'hello world' });
    expect(client.events('text').map((e) => e['delta']).join('')).toContain('tiny model');
    expectAllDelivered(client, metrics);
    expect(fullAnswerSamples).toBeGreaterThan(24_000 * 2);
    // The same answer as outside a session, give or take the double's piece boundaries (a frame or two each).
    expect(Math.abs(client.audioSamples() - fullAnswerSamples)).toBeLessThan(24_000);
    expect(metrics['interrupted']).toBe(false);
    expect(metrics['first_audio_ms'] as number).toBeGreaterThanOrEqual(metrics['endpoint_ms'] as number);
    // Paced: the audio took about as long to arrive as it lasts (less the 250 ms lead).
    const audio = client.received.filter((r) => r.kind === 'audio');
    const spreadMs = audio.at(-1)!.at - audio[0]!.at;
    expect(spreadMs).toBeGreaterThan((client.audioSamples() / 24_000) * 1000 - 600);
    client.send({ type: 'end' });
    const end = await client.waitFor((e) => e.type === 'session_end');
    expect(end).toMatchObject({ reason: 'client_end', turns: 1 });
    expect((await client.closed).code).toBe(1000);
  }, 30_000);

  it('a blip during the answer pauses the audio, then resumes it; nothing is lost', async () => {
    const client = await connectWhileAnswering();
    await client.sendAudio(blip.samples);
    const metrics = await client.waitFor((e) => e.type === 'metrics');
    const types = client.events().map((e) => e.type);
    expect(types).toContain('paused');
    expect(types).toContain('resumed');
    expect(types).not.toContain('interrupted');
    expect(types.indexOf('paused')).toBeLessThan(types.indexOf('resumed'));
    expect(metrics['interrupted']).toBe(false);
    expect(client.events('transcript')).toHaveLength(1);
    expectAllDelivered(client, metrics);
    client.ws.close();
  }, 30_000);

  it('real speech during the answer interrupts it at once and becomes the next turn', async () => {
    const client = await connectWhileAnswering();
    await client.sendAudio(interruption.samples, { frameMs: 100, realtime: true });
    await client.waitFor((e) => e.type === 'metrics' && e['turn'] === 1);
    const received = client.received;
    const index = (type: string, turn?: number) => received.findIndex((r) => r.kind === 'event' && r.event.type === type && (turn === undefined || r.event['turn'] === turn));
    const paused = index('paused');
    const interrupted = index('interrupted', 0);
    const secondStart = index('response_start', 1);
    expect(paused).toBeGreaterThan(0);
    expect(interrupted).toBeGreaterThan(paused);
    // No audio left the worker between the pause and the next answer.
    expect(received.slice(paused, secondStart).some((r) => r.kind === 'audio')).toBe(false);
    const metrics = client.events('metrics');
    expect(metrics.map((m) => [m['turn'], m['interrupted']])).toEqual([
      [0, true],
      [1, false],
    ]);
    expect(client.events('transcript').map((t) => t['turn'])).toEqual([0, 1]);
    client.ws.close();
  }, 30_000);

  it('answers a typed turn', async () => {
    const client = await connect();
    client.send({ type: 'text', text: 'Tell me something.' });
    const metrics = await client.waitFor((e) => e.type === 'metrics');
    expect(client.events('transcript')[0]).toEqual({ type: 'transcript', turn: 0, text: 'Tell me something.' });
    expectAllDelivered(client, metrics);
    client.ws.close();
  }, 30_000);

  it('refuses a wrong token in the URL, and in the first message; accepts the right one there', async () => {
    await expect(SessionClient.connect(`${url}?token=wrong-token`)).rejects.toThrow(/HTTP 401/);
    const wrong = await SessionClient.connect(url);
    wrong.send({ type: 'auth', token: 'nope' });
    expect((await wrong.closed).code).toBe(4401);
    const right = await SessionClient.connect(url);
    right.send({ type: 'auth', token: TOKEN });
    await right.waitFor((e) => e.type === 'ready');
    right.ws.close();
  });

  it('reports bad frames and messages without ending the session', async () => {
    const client = await connect();
    client.ws.send(new Uint8Array(3));
    client.ws.send('not json');
    client.send({ type: 'dance' });
    client.send({ type: 'config', voice: 'en-Nobody' });
    client.send({ type: 'ping' });
    await client.waitFor((e) => e.type === 'pong');
    const errors = client.events('error').map((e) => e['message'] as string);
    expect(errors[0]).toMatch(/PCM16 \(even byte count\)/);
    expect(errors[1]).toBe('text frames must be JSON messages');
    expect(errors[2]).toMatch(/unknown or malformed message/);
    expect(errors[3]).toMatch(/unknown voice "en-Nobody"; valid voices: en-Carter_man/);
    client.ws.close();
  });

  it('ends an idle session', async () => {
    const client = await connect();
    const end = await client.waitFor((e) => e.type === 'session_end', 10_000);
    expect(end['reason']).toBe('idle_timeout');
    expect((await client.closed).code).toBe(1000);
  }, 15_000);
});
