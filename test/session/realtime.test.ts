/**
 * The OpenAI Realtime API on /v1/realtime, driven by the real client packages (@openai/agents-realtime,
 * openai) and by a bare client for what they do not send, against the test profile's real engines:
 * spoken turns, barge-in with truncation, text-only answers, manual commits, G.711 telephony audio,
 * auth, and bad input that must not end the session.
 */
import { createServer, type Server } from 'node:http';
import { connect as netConnect, type AddressInfo, type TcpNetConnectOpts } from 'node:net';
import { RealtimeAgent, RealtimeSession } from '@openai/agents-realtime';
import { TwilioRealtimeTransportLayer } from '@openai/agents-extensions';
import OpenAI from 'openai';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import type { S2sHandler } from '../../handler/s2s-handler.js';
import { loadSileroVad } from '../../src/vad/vad.js';
import { makeUtterance, run, type Utterance } from '../fixtures/speech.js';
import { clientFrame, OPCODE, RawWebSocket } from '../helpers/raw-websocket.js';
import { messages, pcm16Bytes, RealtimeTestClient, speakTo, transcriptOf, waitUntil, type RealtimeEvent } from '../helpers/realtime-client.js';
import { testProfileHandler } from '../helpers/test-profile.js';
import { bargeInOverTwilioBridge } from '../helpers/twilio-bridge.js';

const TOKEN = 'realtime-test-token-0123456789';
let handler: S2sHandler;
let server: Server;
let port: number;
let url: string;
let question24k: Utterance;
let interruption24k: Utterance;

beforeAll(async () => {
  handler = await testProfileHandler({ S2S_SESSION_IDLE_MS: '8000', S2S_MIN_INTERRUPTION_MS: '400' });
  server = createServer((_req, res) => res.writeHead(404).end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  handler.serveSessionsOn(server, TOKEN);
  port = (server.address() as AddressInfo).port;
  url = `ws://127.0.0.1:${port}/v1/realtime`;
  question24k = await makeUtterance([{ silenceMs: 300 }, { say: 'What is the capital of France?' }, { silenceMs: 800 }], 24_000);
  interruption24k = await makeUtterance([{ say: 'Wait, wait, I have another question for you.' }, { silenceMs: 800 }], 24_000);
}, 60_000);
afterAll(async () => {
  await handler?.dispose();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** 24 kHz PCM16 of an utterance as base64 appends of `frameMs`. */
function pcmAppends(utterance: Utterance, frameMs = 100): string[] {
  const bytes = pcm16Bytes(utterance.samples);
  const size = (24_000 * 2 * frameMs) / 1000;
  const out: string[] = [];
  for (let at = 0; at < bytes.length; at += size) out.push(bytes.subarray(at, at + size).toString('base64'));
  return out;
}

describe('Realtime API with @openai/agents-realtime', () => {
  let fullAnswer = '';

  it('a spoken turn through RealtimeSession gives a transcript, audio and agent_end', async () => {
    const agent = new RealtimeAgent({ name: 'Assistant', instructions: 'You are a helpful voice assistant. Answer briefly.' });
    const session = new RealtimeSession(agent, { transport: 'websocket', model: 'gpt-realtime' });
    const errors: unknown[] = [];
    session.on('error', (error) => errors.push(error));
    let audioBytes = 0;
    session.on('audio', (event) => (audioBytes += event.data.byteLength));
    let ended = false;
    session.on('agent_end', () => (ended = true));
    await session.connect({ apiKey: TOKEN, url });
    await speakTo(session, question24k);
    await waitUntil(() => ended, 30_000, 'agent_end');
    const history = messages(session.history);
    await waitUntil(() => transcriptOf(messages(session.history).find((i) => i.role === 'user')), 10_000, 'the user transcript');
    const user = messages(session.history).find((i) => i.role === 'user');
    const assistant = history.find((i) => i.role === 'assistant');
    expect(transcriptOf(user)).toBe('hello world');
    fullAnswer = transcriptOf(assistant);
    expect(fullAnswer).toContain('tiny model');
    expect(assistant?.status).toBe('completed');
    // PCM16 at 24 kHz: more than two seconds of speech came back.
    expect(audioBytes).toBeGreaterThan(24_000 * 2 * 2);
    expect(errors).toEqual([]);
    session.close();
  }, 60_000);

  it('a barge-in interrupts the answer, and the history shows it cut to what was heard', async () => {
    const agent = new RealtimeAgent({ name: 'Assistant', instructions: 'Answer briefly.' });
    const session = new RealtimeSession(agent, { transport: 'websocket', model: 'gpt-realtime' });
    const errors: unknown[] = [];
    session.on('error', (error) => errors.push(error));
    let interrupted = false;
    session.on('audio_interrupted', () => (interrupted = true));
    let audioEvents = 0;
    session.on('audio', () => audioEvents++);
    const raw: RealtimeEvent[] = [];
    session.transport.on('*', (event) => raw.push(event as RealtimeEvent));
    await session.connect({ apiKey: TOKEN, url });
    await speakTo(session, question24k);
    await waitUntil(() => audioEvents > 0, 30_000, 'the first audio');
    await sleep(600);
    await speakTo(session, interruption24k, { realtime: true });
    await waitUntil(() => raw.some((e) => e.type === 'response.done' && (e['response'] as { status: string }).status === 'cancelled'), 20_000, 'the cancelled response');
    expect(interrupted).toBe(true);
    const cancelled = raw.find((e) => e.type === 'response.done')!['response'] as { status: string; status_details: { reason: string } };
    expect(cancelled).toMatchObject({ status: 'cancelled', status_details: { reason: 'turn_detected' } });
    // The client truncated the item it was playing; the server kept the part that was heard.
    await waitUntil(() => raw.some((e) => e.type === 'conversation.item.truncated'), 10_000, 'conversation.item.truncated');
    const firstAnswerId = (raw.find((e) => e.type === 'conversation.item.truncated')!['item_id'] as string);
    await waitUntil(() => raw.some((e) => e.type === 'conversation.item.retrieved' && (e['item'] as { id: string }).id === firstAnswerId), 10_000, 'the retrieved item');
    const cut = messages(session.history).find((i) => i.itemId === firstAnswerId);
    expect((cut as { status?: string } | undefined)?.status).toBe('incomplete');
    expect(transcriptOf(cut).length).toBeLessThan(fullAnswer.length);
    expect(fullAnswer.startsWith(transcriptOf(cut).split(' ')[0] ?? '')).toBe(true);
    // The interruption became the next turn and was answered.
    await waitUntil(() => raw.filter((e) => e.type === 'response.done').length >= 2, 30_000, 'the second response');
    const second = raw.filter((e) => e.type === 'response.done')[1]!['response'] as { status: string };
    expect(second.status).toBe('completed');
    expect(errors).toEqual([]);
    session.close();
  }, 90_000);
});

describe('Realtime API with the openai package', () => {
  it('OpenAIRealtimeWS over plain TCP (createConnection): a text-only turn with metadata echoed and usage', async () => {
    const openai = new OpenAI({ apiKey: TOKEN, baseURL: `http://127.0.0.1:${port}/v1` });
    // OpenAIRealtimeWS always builds a wss: URL; createConnection gives it a plain TCP socket instead of TLS.
    const rt = new OpenAIRealtimeWS({ model: 'gpt-realtime', options: { createConnection: (o) => netConnect({ host: (o as TcpNetConnectOpts).host, port: (o as TcpNetConnectOpts).port }) } }, openai);
    const events: RealtimeEvent[] = [];
    const errors: unknown[] = [];
    rt.on('error', (error) => errors.push(error));
    rt.on('event', (event) => events.push(event as unknown as RealtimeEvent));
    await new Promise<void>((resolve, reject) => {
      rt.socket.once('open', () => resolve());
      rt.socket.once('error', reject);
    });
    rt.send({ type: 'session.update', session: { type: 'realtime', output_modalities: ['text'] } });
    rt.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Tell me something.' }] } });
    rt.send({ type: 'response.create', response: { metadata: { client_event_id: 'reply-1' } } });
    await waitUntil(() => events.some((e) => e.type === 'response.done'), 30_000, 'response.done');
    const types = events.map((e) => e.type);
    expect(types.slice(0, 2)).toEqual(['session.created', 'session.updated']);
    expect(types).not.toContain('response.output_audio.delta');
    expect(types.indexOf('response.created')).toBeLessThan(types.indexOf('response.output_item.added'));
    const created = events.find((e) => e.type === 'response.created')!['response'] as { metadata: unknown };
    expect(created.metadata).toEqual({ client_event_id: 'reply-1' });
    const text = events.filter((e) => e.type === 'response.output_text.delta').map((e) => e['delta']).join('');
    expect(text).toContain('tiny model');
    const done = events.find((e) => e.type === 'response.done')!['response'] as { status: string; usage: { input_tokens: number; output_tokens: number; total_tokens: number }; output: { content: { text: string }[] }[] };
    expect(done.status).toBe('completed');
    expect(done.usage.output_tokens).toBeGreaterThan(0);
    expect(done.usage.total_tokens).toBe(done.usage.input_tokens + done.usage.output_tokens);
    expect(done.output[0]!.content[0]!.text).toBe(text);
    expect(events.every((e) => typeof e['event_id'] === 'string')).toBe(true);
    expect(errors).toEqual([]);
    rt.close();
  }, 60_000);
});

/** mu-law 8 kHz bytes of an utterance made at 8 kHz, encoded by sox (not by our codec). */
async function mulawOf(utterance: Utterance): Promise<Buffer> {
  return run('sox', ['-t', 'raw', '-e', 'floating-point', '-b', '32', '-c', '1', '-r', '8000', '-', '-t', 'raw', '-e', 'mu-law', '-b', '8', '-c', '1', '-r', '8000', '-'], Buffer.from(utterance.samples.buffer));
}

/** Whether Silero VAD finds speech in mu-law 8 kHz bytes (decoded by sox, resampled to 16 kHz). */
async function mulawHasSpeech(mulaw: Buffer): Promise<boolean> {
  const decoded = await run('sox', ['-t', 'raw', '-e', 'mu-law', '-b', '8', '-c', '1', '-r', '8000', '-', '-t', 'raw', '-e', 'floating-point', '-b', '32', '-c', '1', '-r', '16000', '-'], mulaw);
  const vad = await loadSileroVad();
  try {
    const events = await vad.openStream().push(new Float32Array(decoded.buffer.slice(decoded.byteOffset, decoded.byteOffset + decoded.byteLength)));
    return events.some((e) => e.type === 'speech_start');
  } finally {
    await vad.dispose();
  }
}

describe('Realtime API with the Twilio transport of @openai/agents-extensions', () => {
  it('a simulated Twilio media stream (20 ms mu-law frames) gets a spoken answer back as Twilio media', async () => {
    // The app's media-stream endpoint, as in the Agents SDK's Twilio example: one RealtimeSession per call.
    const app = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    const sessions: RealtimeSession[] = [];
    const errors: unknown[] = [];
    app.on('connection', (twilioWebSocket) => {
      const transport = new TwilioRealtimeTransportLayer({ twilioWebSocket: twilioWebSocket as never });
      // RealtimeSession's own defaults (PCM 24 kHz) win over the transport's G.711 unless the config says so.
      const config = { audio: { input: { format: { type: 'audio/pcmu' as const } }, output: { format: { type: 'audio/pcmu' as const } } } };
      const session = new RealtimeSession(new RealtimeAgent({ name: 'Phone assistant', instructions: 'Answer briefly.' }), { transport, config });
      session.on('error', (error) => errors.push(error));
      sessions.push(session);
      void session.connect({ apiKey: TOKEN, url });
    });
    await new Promise((resolve) => app.once('listening', resolve));
    // Twilio's side of the call.
    const twilio = new WebSocket(`ws://127.0.0.1:${(app.address() as AddressInfo).port}/media-stream`);
    const fromApp: { event: string; media?: { payload: string }; streamSid?: string }[] = [];
    twilio.on('message', (data) => fromApp.push(JSON.parse(data.toString()) as (typeof fromApp)[number]));
    await new Promise((resolve) => twilio.once('open', resolve));
    await waitUntil(() => sessions[0]?.transport.status === 'connected', 10_000, 'the session to connect');
    twilio.send(JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' }));
    const start = { streamSid: 'MZ0001', callSid: 'CA0001', tracks: ['inbound'], mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 } };
    twilio.send(JSON.stringify({ event: 'start', sequenceNumber: '1', start, streamSid: 'MZ0001' }));
    const mulaw = await mulawOf(await makeUtterance([{ silenceMs: 300 }, { say: 'What is the capital of France?' }, { silenceMs: 1000 }], 8_000));
    for (let at = 0, chunk = 1; at < mulaw.length; at += 160, chunk++) {
      const media = { track: 'inbound', chunk: String(chunk), timestamp: String(at / 8), payload: mulaw.subarray(at, at + 160).toString('base64') };
      twilio.send(JSON.stringify({ event: 'media', sequenceNumber: String(chunk + 1), media, streamSid: 'MZ0001' }));
      if (chunk % 10 === 0) await sleep(5);
    }
    await waitUntil(() => fromApp.some((m) => m.event === 'mark') && fromApp.filter((m) => m.event === 'media').length > 10, 40_000, 'audio and a mark for Twilio');
    const media = fromApp.filter((m) => m.event === 'media');
    expect(media.every((m) => m.streamSid === 'MZ0001')).toBe(true);
    expect(await mulawHasSpeech(Buffer.concat(media.map((m) => Buffer.from(m.media!.payload, 'base64'))))).toBe(true);
    expect(errors).toEqual([]);
    sessions[0]!.close();
    twilio.close();
    await new Promise((resolve) => app.close(resolve));
  }, 60_000);
});

describe('Realtime API, bare client', () => {
  it('a manual-commit session (turn_detection null): commit, transcription, response.create', async () => {
    const client = await RealtimeTestClient.connect(`${url}?model=gpt-realtime`, { token: TOKEN });
    client.send({
      type: 'session.update',
      session: { type: 'realtime', audio: { input: { turn_detection: null, transcription: { model: 'gpt-4o-mini-transcribe' } } } },
    });
    const updated = await client.waitFor('session.updated');
    expect((updated['session'] as { audio: { input: { turn_detection: unknown } } }).audio.input.turn_detection).toBeNull();
    for (const audio of pcmAppends(question24k)) client.send({ type: 'input_audio_buffer.append', audio });
    await sleep(300);
    // No turn detection: nothing happens until the commit.
    expect(client.of('input_audio_buffer.speech_started')).toEqual([]);
    client.send({ type: 'input_audio_buffer.commit', event_id: 'commit-1' });
    const committed = await client.waitFor('input_audio_buffer.committed');
    const transcribed = await client.waitFor('conversation.item.input_audio_transcription.completed');
    expect(transcribed).toMatchObject({ item_id: committed['item_id'], content_index: 0, transcript: 'hello world' });
    expect(client.of('response.created')).toEqual([]);
    client.send({ type: 'response.create' });
    const done = await client.waitFor('response.done', 30_000);
    expect((done['response'] as { status: string }).status).toBe('completed');
    const audioBytes = client.of('response.output_audio.delta').reduce((n, e) => n + Buffer.from(e['delta'] as string, 'base64').length, 0);
    expect(audioBytes).toBeGreaterThan(24_000 * 2);
    // Every delta is 20-200 ms of 24 kHz PCM16 (the last may be shorter).
    const sizes = client.of('response.output_audio.delta').map((e) => Buffer.from(e['delta'] as string, 'base64').length);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(24_000 * 2 * 0.2);
    client.send({ type: 'input_audio_buffer.commit', event_id: 'commit-2' });
    const empty = await client.waitFor('error');
    expect(empty['error']).toMatchObject({ type: 'invalid_request_error', code: 'input_audio_buffer_commit_empty', event_id: 'commit-2' });
    client.ws.close();
  }, 60_000);

  it('server_vad idle_timeout_ms: silence after an answer has played out triggers timeout_triggered and a new response', async () => {
    const client = await RealtimeTestClient.connect(url, { token: TOKEN });
    client.send({
      type: 'session.update',
      session: { type: 'realtime', output_modalities: ['text'], audio: { input: { turn_detection: { type: 'server_vad', idle_timeout_ms: 300 } } } },
    });
    const updated = await client.waitFor('session.updated');
    expect((updated['session'] as { audio: { input: { turn_detection: { idle_timeout_ms: number } } } }).audio.input.turn_detection.idle_timeout_ms).toBe(300);
    expect(client.of('input_audio_buffer.timeout_triggered')).toEqual([]); // armed only after an answer
    client.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Hello there.' }] } });
    client.send({ type: 'response.create' });
    await client.waitFor('response.done');
    const triggered = await client.waitFor('input_audio_buffer.timeout_triggered');
    expect(typeof triggered['audio_end_ms']).toBe('number');
    // The re-prompt is a whole response: created after the trigger, then done.
    await client.waitFor('response.done', 20_000, 2);
    const types = client.events.map((e) => e.type);
    expect(types.indexOf('input_audio_buffer.timeout_triggered')).toBeLessThan(types.lastIndexOf('response.created'));
    client.ws.close();
  }, 60_000);

  it('a G.711 mu-law session fed 20 ms frames like Twilio: output deltas are mu-law speech', async () => {
    const client = await RealtimeTestClient.connect(url, { token: TOKEN });
    client.send({
      type: 'session.update',
      session: { type: 'realtime', audio: { input: { format: { type: 'audio/pcmu' }, turn_detection: { type: 'server_vad' } }, output: { format: { type: 'audio/pcmu' }, voice: 'alloy' } } },
    });
    const updated = await client.waitFor('session.updated');
    expect((updated['session'] as { audio: { input: { turn_detection: Record<string, unknown> } } }).audio.input.turn_detection).toMatchObject({
      type: 'server_vad',
      create_response: true,
      interrupt_response: true,
    });
    // Encoded by sox, not by our codec: mu-law at 8 kHz, 160 bytes (20 ms) per frame, as Twilio sends.
    const mulaw = await mulawOf(await makeUtterance([{ silenceMs: 300 }, { say: 'What is the capital of France?' }, { silenceMs: 800 }], 8_000));
    for (let at = 0; at < mulaw.length; at += 160) {
      client.send({ type: 'input_audio_buffer.append', audio: mulaw.subarray(at, at + 160).toString('base64') });
      if ((at / 160) % 10 === 0) await sleep(5);
    }
    const done = await client.waitFor('response.done', 40_000);
    expect((done['response'] as { status: string }).status).toBe('completed');
    const deltas = client.of('response.output_audio.delta').map((e) => Buffer.from(e['delta'] as string, 'base64'));
    const out = Buffer.concat(deltas);
    // 8000 one-byte samples a second; deltas of 20-200 ms.
    expect(out.length).toBeGreaterThan(8_000);
    expect(Math.max(...deltas.map((d) => d.length))).toBeLessThanOrEqual(1_600);
    // Decoded by sox as mu-law and resampled to 16 kHz, the answer holds speech for Silero VAD.
    expect(await mulawHasSpeech(out)).toBe(true);
    client.ws.close();
  }, 60_000);

  it('G.711 with a bridge like Twilio\'s sample: a caller talking over an answer stops it, none of it sent after speech_started', async () => {
    const bargeIn = await bargeInOverTwilioBridge(url, TOKEN);
    expect(bargeIn.status).toBe('cancelled');
    // The worker holds the answer's audio at the caller's voice onset, before speech_started: nothing
    // of it comes after. How much the caller heard (Twilio cleared, or out of audio) is wall time: its
    // goal (< 200 ms) is in `npm run bench -- session`; here it is shown.
    expect(bargeIn.deltasAfterSpeechStarted).toBe(0);
    console.log(`G.711 barge-in: the caller heard ${bargeIn.heardMs.toFixed(0)} ms of the old answer after starting to talk`);
  }, 60_000);

  it('bad input gets a clear error event with the client event_id, and the session keeps working', async () => {
    const client = await RealtimeTestClient.connect(url, { token: TOKEN });
    await client.waitFor('session.created');
    client.ws.send('{not json');
    client.send({ type: 'response.dance', event_id: 'e1' });
    client.send({ type: 'session.update', event_id: 'e2', session: { output_modalities: 'text', audio: { input: { turn_detection: { type: 'server_vad', silence_duration_ms: 'long' } } } } });
    client.send({ type: 'input_audio_buffer.append', event_id: 'e3', audio: Buffer.alloc(3).toString('base64') });
    client.send({ type: 'input_audio_buffer.append', event_id: 'e4', audio: 'not base64!' });
    client.send({ type: 'input_audio_buffer.append', event_id: 'e5', audio: 'A'.repeat(2 * 1024 * 1024) });
    client.send({ type: 'session.update', event_id: 'e6', session: { audio: { output: { voice: 'nobody' } } } });
    client.send({ type: 'conversation.item.create', event_id: 'e7', item: { type: 'function_call_output', call_id: 'x', output: '{}' } });
    // Quiet on purpose: no active response, truncate of an unknown item, retrieve of an unknown item.
    client.send({ type: 'response.cancel', event_id: 'q1' });
    client.send({ type: 'conversation.item.truncate', event_id: 'q2', item_id: 'item_none', content_index: 0, audio_end_ms: 10 });
    client.send({ type: 'conversation.item.retrieve', event_id: 'q3', item_id: 'item_none' });
    client.send({ type: 'session.update', event_id: 'ok', session: { instructions: 'Be brief.' } });
    await client.waitFor('session.updated');
    const errors = client.of('error').map((e) => e['error'] as { type: string; code: string; message: string; param: string | null; event_id: string | null });
    expect(errors.map((e) => [e.code, e.event_id])).toEqual([
      ['invalid_json', null],
      ['invalid_value', 'e1'],
      ['invalid_value', 'e2'],
      ['invalid_audio', 'e3'],
      ['invalid_audio', 'e4'],
      ['event_too_large', null],
      ['invalid_value', 'e6'],
      ['invalid_value', 'e7'],
    ]);
    expect(errors[1]!.message).toMatch(/unknown event type "response.dance"/);
    expect(errors[2]!.message).toMatch(/output_modalities/);
    expect(errors[2]!.message).toMatch(/silence_duration_ms/);
    expect(errors[3]!.message).toMatch(/even number of bytes/);
    expect(errors[6]!.message).toMatch(/unknown voice "nobody"/);
    expect(errors[7]!.message).toMatch(/no function call with call_id "x" is in the conversation/);
    expect(errors.every((e) => e.type === 'invalid_request_error')).toBe(true);
    // Still working: a text answer.
    client.send({ type: 'conversation.item.create', item: { id: 'my-item-1', type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Hello?' }] } });
    const added = await client.waitFor('conversation.item.added');
    expect((added['item'] as { id: string }).id).toBe('my-item-1');
    client.send({ type: 'response.create', response: { output_modalities: ['text'] } });
    client.send({ type: 'response.create', event_id: 'twice' });
    await client.waitFor('response.done', 30_000);
    expect(client.of('error').at(-1)!['error']).toMatchObject({ code: 'conversation_already_has_active_response', event_id: 'twice' });
    client.ws.close();
  }, 60_000);

  it('protocol violations (invalid UTF-8, a reserved opcode, a frame over the size limit) close that socket only', async () => {
    const bystander = await RealtimeTestClient.connect(url, { token: TOKEN });
    await bystander.waitFor('session.created');
    const auth = { Authorization: `Bearer ${TOKEN}` };
    // A text frame whose header announces 9 MiB (over the 8 MiB limit): refused on the header, before any payload.
    const oversized = Buffer.concat([Buffer.from([0x80 | OPCODE.text, 0x80 | 127]), Buffer.alloc(8), Buffer.alloc(4), Buffer.alloc(16)]);
    oversized.writeBigUInt64BE(BigInt(9 * 1024 * 1024), 2);
    for (const frame of [clientFrame(OPCODE.text, new Uint8Array([0xc3, 0x28])), clientFrame(OPCODE.reserved, 'x'), oversized]) {
      const { status, ws } = await RawWebSocket.open(port, '/v1/realtime', auth);
      expect(status).toBe(101);
      ws.write(frame);
      await ws.closed;
    }
    // The session next door never noticed.
    bystander.send({ type: 'session.update', session: { instructions: 'Still here.' } });
    expect((await bystander.waitFor('session.updated'))['session']).toMatchObject({ instructions: 'Still here.' });
    bystander.ws.close();
  });

  it('a response cancelled before it starts leaves no item behind: the next item follows the last one the client saw', async () => {
    const client = await RealtimeTestClient.connect(url, { token: TOKEN });
    await client.waitFor('session.created');
    client.send({ type: 'conversation.item.create', item: { id: 'c-1', type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Hello?' }] } });
    await client.waitFor((e) => e.type === 'conversation.item.added' && (e['item'] as { id: string }).id === 'c-1');
    // In one tick: the cancel reaches the server before the answer has started.
    client.send({ type: 'response.create', response: { output_modalities: ['text'] } });
    client.send({ type: 'response.cancel' });
    const done = await client.waitFor('response.done');
    expect(done['response']).toMatchObject({ status: 'cancelled', output: [] });
    // Let the cut answer run its course in the core, then add an item at the end.
    await new Promise((resolve) => setTimeout(resolve, 500));
    client.send({ type: 'conversation.item.create', item: { id: 'c-2', type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Still there?' }] } });
    const added = await client.waitFor((e) => e.type === 'conversation.item.added' && (e['item'] as { id: string }).id === 'c-2');
    const seen = new Set(client.of('conversation.item.added').map((e) => (e['item'] as { id: string }).id));
    expect(seen.has(added['previous_item_id'] as string)).toBe(true);
    expect(added['previous_item_id']).toBe('c-1');
    client.ws.close();
  });

  it('conversation items: created with a chosen id, retrieved, deleted', async () => {
    const client = await RealtimeTestClient.connect(url, { token: TOKEN });
    client.send({ type: 'conversation.item.create', item: { id: 'sys-1', type: 'message', role: 'system', content: [{ type: 'input_text', text: 'Speak like a pirate.' }] } });
    client.send({ type: 'conversation.item.create', previous_item_id: 'sys-1', item: { id: 'u-1', type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Hi.' }] } });
    await client.waitFor((e) => e.type === 'conversation.item.added' && (e['item'] as { id: string }).id === 'u-1');
    expect(client.of('conversation.item.added').at(-1)!['previous_item_id']).toBe('sys-1');
    client.send({ type: 'conversation.item.retrieve', item_id: 'u-1' });
    const retrieved = await client.waitFor('conversation.item.retrieved');
    expect(retrieved['item']).toEqual({ id: 'u-1', object: 'realtime.item', type: 'message', status: 'completed', role: 'user', content: [{ type: 'input_text', text: 'Hi.' }] });
    client.send({ type: 'conversation.item.delete', item_id: 'sys-1' });
    expect(await client.waitFor('conversation.item.deleted')).toMatchObject({ item_id: 'sys-1' });
    client.ws.close();
  });

  it('auth: bearer, key subprotocol (realtime selected only when offered) or ?token=; anything else is HTTP 401', async () => {
    await expect(RealtimeTestClient.connect(url)).rejects.toThrow(/HTTP 401/);
    await expect(RealtimeTestClient.connect(url, { token: 'wrong' })).rejects.toThrow(/HTTP 401/);
    await expect(RealtimeTestClient.connect(`${url}?token=wrong`)).rejects.toThrow(/HTTP 401/);
    const browser = await RealtimeTestClient.connect(url, { protocols: ['realtime', `openai-insecure-api-key.${TOKEN}`] });
    expect(browser.ws.protocol).toBe('realtime');
    await browser.waitFor('session.created');
    browser.ws.close();
    const query = await RealtimeTestClient.connect(`${url}?token=${TOKEN}&model=whatever`);
    const created = await query.waitFor('session.created');
    expect((created['session'] as { model: string }).model).toBe('whatever');
    query.ws.close();
  });
});
