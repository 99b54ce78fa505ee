/**
 * Realtime correctness under real clients (issue 21): the event sequences OpenAI's server keeps and
 * that a review found broken, driven by the `openai` package and by a bare `ws` client against the
 * test profile's real engines (an ASR double where exact words decide the endpoint):
 * - commit + response.create under server_vad: one response, announced once;
 * - input_audio_buffer.clear under server_vad drops the speech in progress;
 * - session.update keeps the speech in progress, and speech times count from the session's start;
 * - a preemptive answer made before a session.update is not used after it;
 * - a short reply while only the unplayed output lead remains is a turn, not a blip;
 * - response.create's conversation and tool_choice are honoured or refused by name.
 */
import { createServer, type Server } from 'node:http';
import { connect as netConnect, type AddressInfo, type TcpNetConnectOpts } from 'node:net';
import OpenAI from 'openai';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_QWEN_WEATHER_TOOL } from '../../builder/tiny-models/tiny-qwen.js';
import { createHandlerFor, type S2sHandler } from '../../handler/s2s-handler.js';
import type { Asr } from '../../src/asr/asr.js';
import { Logger } from '../../src/log/logger.js';
import { ScriptedAsrDouble } from '../doubles/scripted-asr-double.js';
import { makeUtterance, type Utterance } from '../fixtures/speech.js';
import { pcm16Bytes, RealtimeTestClient, waitUntil, type RealtimeEvent } from '../helpers/realtime-client.js';
import { testProfileHandler } from '../helpers/test-profile.js';

const TOKEN = 'realtime-correctness-token-0123456789';
const log = new Logger({ level: 'ERROR', jsonLines: true, write: () => undefined });
let real: S2sHandler;
let worker: { url: string; port: number; close(): Promise<void> };
/** Speech with no silence after it: still in progress when it has all been sent. */
let speechOnly: Utterance;
let silence: Utterance;
let question: Utterance;
let shortReply: Utterance;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A worker on the test profile's engines (optionally with an ASR double) serving /v1/realtime. */
async function serve(asr?: Asr): Promise<{ url: string; port: number; close(): Promise<void> }> {
  const handler = createHandlerFor(asr ? { ...real.engines, asr } : real.engines, real.config, log);
  const server: Server = createServer((_req, res) => res.writeHead(404).end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  handler.serveSessionsOn(server, TOKEN);
  const port = (server.address() as AddressInfo).port;
  return {
    url: `ws://127.0.0.1:${port}/v1/realtime`,
    port,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

beforeAll(async () => {
  // A long output lead: the unplayed tail of an answer lasts long enough to speak into (item 6).
  real = await testProfileHandler({ S2S_SESSION_IDLE_MS: '8000', S2S_MIN_INTERRUPTION_MS: '700', S2S_OUTPUT_LEAD_MS: '800' });
  worker = await serve();
  speechOnly = await makeUtterance([{ silenceMs: 300 }, { say: 'What is the capital of France?' }], 24_000);
  silence = await makeUtterance([{ silenceMs: 1500 }], 24_000);
  question = await makeUtterance([{ silenceMs: 300 }, { say: 'What is the capital of France?' }, { silenceMs: 1200 }], 24_000);
  shortReply = await makeUtterance([{ say: 'Yes.' }, { silenceMs: 1200 }], 24_000);
}, 60_000);
afterAll(async () => {
  await worker?.close();
  await real?.dispose();
});

/** Sends an utterance as 24 kHz PCM16 appends of `frameMs`, at once or paced like a microphone. */
async function append(client: RealtimeTestClient, utterance: Utterance, options: { frameMs?: number; realtime?: boolean; from?: number; to?: number } = {}): Promise<void> {
  const frameMs = options.frameMs ?? 100;
  const bytes = pcm16Bytes(utterance.samples.subarray(options.from ?? 0, options.to));
  const size = (24_000 * 2 * frameMs) / 1000;
  for (let at = 0; at < bytes.length; at += size) {
    client.send({ type: 'input_audio_buffer.append', audio: bytes.subarray(at, at + size).toString('base64') });
    if (options.realtime) await sleep(frameMs);
  }
}

async function connect(url = worker.url): Promise<RealtimeTestClient> {
  const client = await RealtimeTestClient.connect(url, { token: TOKEN });
  await client.waitFor('session.created');
  return client;
}

/** The `openai` package's Realtime client over plain TCP (it always builds a wss: URL). */
async function openaiClient(port: number): Promise<{ rt: OpenAIRealtimeWS; events: RealtimeEvent[] }> {
  const openai = new OpenAI({ apiKey: TOKEN, baseURL: `http://127.0.0.1:${port}/v1` });
  const rt = new OpenAIRealtimeWS({ model: 'gpt-realtime', options: { createConnection: (o) => netConnect({ host: (o as TcpNetConnectOpts).host, port: (o as TcpNetConnectOpts).port }) } }, openai);
  const events: RealtimeEvent[] = [];
  rt.on('error', () => undefined);
  rt.on('event', (event) => events.push(event as unknown as RealtimeEvent));
  await new Promise<void>((resolve, reject) => {
    rt.socket.once('open', () => resolve());
    rt.socket.once('error', reject);
  });
  return { rt, events };
}

const ofType = (events: RealtimeEvent[], type: string) => events.filter((e) => e.type === type);

describe('Realtime correctness: input audio and turns', () => {
  it('server_vad, commit then response.create (openai package): one response in progress, announced once', async () => {
    const { rt, events } = await openaiClient(worker.port);
    const bytes = pcm16Bytes(speechOnly.samples);
    for (let at = 0; at < bytes.length; at += 4_800) rt.send({ type: 'input_audio_buffer.append', audio: bytes.subarray(at, at + 4_800).toString('base64') });
    await waitUntil(() => ofType(events, 'input_audio_buffer.speech_started').length > 0, 10_000, 'speech_started');
    await sleep(500); // every frame sent has reached the VAD: the speech is still in progress
    rt.send({ type: 'input_audio_buffer.commit' });
    rt.send({ type: 'response.create' });
    await waitUntil(() => ofType(events, 'response.done').length > 0, 30_000, 'response.done');
    await sleep(1_500); // a second response would have started by now
    expect(ofType(events, 'input_audio_buffer.committed')).toHaveLength(1);
    expect(ofType(events, 'error')).toEqual([]);
    const created = ofType(events, 'response.created');
    expect(created).toHaveLength(1);
    const done = ofType(events, 'response.done');
    expect(done).toHaveLength(1);
    expect((done[0]!['response'] as { id: string; status: string })).toMatchObject({ id: (created[0]!['response'] as { id: string }).id, status: 'completed' });
    rt.close();
  }, 60_000);

  it('server_vad, input_audio_buffer.clear drops the speech in progress: no speech_stopped, commit or answer from it', async () => {
    const client = await connect();
    await append(client, speechOnly);
    await client.waitFor('input_audio_buffer.speech_started');
    client.send({ type: 'input_audio_buffer.clear' });
    await client.waitFor('input_audio_buffer.cleared');
    await append(client, silence, { realtime: true });
    await sleep(500);
    expect(client.of('input_audio_buffer.speech_stopped')).toEqual([]);
    expect(client.of('input_audio_buffer.committed')).toEqual([]);
    expect(client.of('response.created')).toEqual([]);
    // The session still hears what comes after the clear.
    await append(client, question);
    await client.waitFor('input_audio_buffer.committed', 20_000);
    client.ws.close();
  }, 60_000);

  it('session.update keeps the speech in progress (instructions, then turn detection), and speech times count from the session start', async () => {
    const client = await connect();
    const half = Math.round(question.samples.length * 0.45);
    await append(client, question, { to: half });
    const started = await client.waitFor('input_audio_buffer.speech_started');
    client.send({ type: 'session.update', session: { type: 'realtime', instructions: 'Answer in one short sentence.' } });
    await client.waitFor('session.updated');
    client.send({ type: 'session.update', session: { type: 'realtime', audio: { input: { turn_detection: { type: 'server_vad', silence_duration_ms: 600 } } } } });
    await client.waitFor('session.updated', 20_000, 2);
    await append(client, question, { from: half });
    const stopped = await client.waitFor('input_audio_buffer.speech_stopped', 20_000);
    // One speech, heard whole across both updates.
    expect(client.of('input_audio_buffer.speech_started')).toHaveLength(1);
    expect(stopped['item_id']).toBe(started['item_id']);
    const questionMs = (question.samples.length / 24_000) * 1000;
    // Audio time, not wall time: where the session's audio holds the speech (after the question's 300 ms
    // of silence, less the pre-roll), whatever the machine's speed.
    expect(started['audio_start_ms'] as number).toBeGreaterThan(100);
    expect(started['audio_start_ms'] as number).toBeLessThan(400);
    expect(stopped['audio_end_ms'] as number).toBeGreaterThan(questionMs - 1_300);
    const committed = await client.waitFor('input_audio_buffer.committed');
    expect(committed['item_id']).toBe(started['item_id']);
    await client.waitFor('response.done', 30_000);
    // A turn-detection change after the first turn: the next speech is stamped on the session's clock, not from 0.
    client.send({ type: 'session.update', session: { type: 'realtime', audio: { input: { turn_detection: { type: 'server_vad', silence_duration_ms: 500 } } } } });
    await client.waitFor('session.updated', 20_000, 3);
    await append(client, question);
    const second = await client.waitFor('input_audio_buffer.speech_started', 20_000, 2);
    expect(second['audio_start_ms'] as number).toBeGreaterThan(questionMs);
    client.ws.close();
  }, 90_000);

  it('a short reply while only the unplayed output lead remains is a turn (nothing to resume), never dropped', async () => {
    const client = await connect();
    client.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Say something short.' }] } });
    client.send({ type: 'response.create' });
    await client.waitFor('response.done', 30_000);
    // All of the answer has been sent; its last 800 ms (the lead) are still playing at the client.
    await append(client, shortReply);
    await client.waitFor('input_audio_buffer.committed', 10_000);
    const second = await client.waitFor('response.done', 30_000, 2);
    expect((second['response'] as { status: string }).status).toBe('completed');
    const started = client.of('input_audio_buffer.speech_started');
    expect(started).toHaveLength(1);
    expect(client.of('input_audio_buffer.committed')[0]!['item_id']).toBe(started[0]!['item_id']);
    client.ws.close();
  }, 60_000);
});

describe('Realtime correctness: responses', () => {
  it('a preemptive answer made before a session.update that adds tools is thrown away: the answer calls the tool', async () => {
    const asr = new ScriptedAsrDouble({ text: 'What is the weather in Paris?' });
    const server = await serve(asr);
    try {
      const client = await connect(server.url);
      // A long fixed endpoint: the update lands in the endpoint wait, after the answer was started on the speculative transcript.
      client.send({ type: 'session.update', session: { type: 'realtime', output_modalities: ['text'], audio: { input: { turn_detection: { type: 'server_vad', silence_duration_ms: 1500 } } } } });
      await client.waitFor('session.updated');
      const speech = await makeUtterance([{ silenceMs: 300 }, { say: 'What is the weather in Paris?' }, { silenceMs: 600 }], 24_000);
      await append(client, speech, { realtime: true });
      expect(client.of('input_audio_buffer.speech_stopped')).toEqual([]); // still in the endpoint wait
      expect(asr.calls.length).toBeGreaterThan(0); // the speculative transcript (and with it the preemptive answer) came
      client.send({ type: 'session.update', session: { type: 'realtime', tools: [{ type: 'function', ...TINY_QWEN_WEATHER_TOOL }] } });
      await client.waitFor('session.updated', 10_000, 2);
      await append(client, silence, { realtime: true });
      const done = await client.waitFor('response.done', 30_000);
      const output = (done['response'] as { output: { type: string; name?: string }[] }).output;
      expect(output.map((o) => o.type)).toContain('function_call');
      expect(output.find((o) => o.type === 'function_call')?.name).toBe('get_weather');
      client.ws.close();
    } finally {
      await server.close();
    }
  }, 60_000);

  it('response.create (openai package): conversation "none" and per-response tools are refused by name; a per-response tool_choice applies', async () => {
    const { rt, events } = await openaiClient(worker.port);
    rt.send({ type: 'session.update', session: { type: 'realtime', output_modalities: ['text'], tools: [{ type: 'function', ...TINY_QWEN_WEATHER_TOOL }] } });
    await waitUntil(() => ofType(events, 'session.updated').length > 0, 10_000, 'session.updated');
    rt.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'What is the weather in Paris?' }] } });
    rt.send({ type: 'response.create', event_id: 'oob', response: { conversation: 'none' } });
    rt.send({ type: 'response.create', event_id: 'tools', response: { tools: [] } } as never);
    await waitUntil(() => ofType(events, 'error').length >= 2, 10_000, 'two errors');
    const errors = ofType(events, 'error').map((e) => e['error'] as { code: string; param: string; event_id: string });
    expect(errors).toEqual([
      expect.objectContaining({ code: 'unsupported_value', param: 'response.conversation', event_id: 'oob' }),
      expect.objectContaining({ code: 'unsupported_value', param: 'response.tools', event_id: 'tools' }),
    ]);
    expect(ofType(events, 'response.created')).toEqual([]);
    // The session's tool_choice is auto (the tiny model calls get_weather whenever it may); "none" for this response: words, no call.
    rt.send({ type: 'response.create', response: { tool_choice: 'none' } });
    await waitUntil(() => ofType(events, 'response.done').length > 0, 30_000, 'response.done');
    const output = (ofType(events, 'response.done')[0]!['response'] as { output: { type: string }[] }).output;
    expect(output.map((o) => o.type)).toEqual(['message']);
    // The next response, with the session's own choice, calls the tool.
    rt.send({ type: 'response.create' });
    await waitUntil(() => ofType(events, 'response.done').length > 1, 30_000, 'the second response.done');
    const next = (ofType(events, 'response.done')[1]!['response'] as { output: { type: string }[] }).output;
    expect(next.map((o) => o.type)).toContain('function_call');
    rt.close();
  }, 60_000);
});
