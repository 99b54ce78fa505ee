/**
 * The CPU profile end to end: the worker runs our TTS server with the real engine
 * (S2S_TTS_ENGINE=vibevoice) on the tiny random-weight model in the published layout
 * (`python -m s2s_tts.tiny_model`). A turn job and live sessions are answered with its audio
 * (random weights: audio, not words); four sessions at once share the one server, and none waits
 * for another's utterance; bad input and faults reach the client as named errors while the other
 * streams go on.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerJob } from '../../handler/runtime/types.js';
import { createS2sHandler, type S2sHandler } from '../../handler/s2s-handler.js';
import { Logger } from '../../src/log/logger.js';
import { TtsServerClient } from '../../src/tts/tts-client.js';
import { speakText } from '../../src/tts/tts.js';
import { makeUtterance, wavOf, type Utterance } from '../fixtures/speech.js';
import { collect } from '../helpers/collect.js';
import { SessionClient } from '../helpers/session-client.js';
import { testProfileEnv } from '../helpers/test-profile.js';
import { tinyTtsModelDir } from '../helpers/tiny-tts-model.js';
import { attachedServer } from '../helpers/tts-sidecar.js';

const TOKEN = 'tiny-engine-test-token-0123456789';
const lines: string[] = [];
const log = new Logger({ level: 'DEBUG', jsonLines: true, write: (line) => lines.push(line) });
let handler: S2sHandler;
let server: Server;
let url: string;
let ttsPort: number;
let question: Utterance;

beforeAll(async () => {
  const env = await testProfileEnv({
    S2S_TTS_ENGINE: 'vibevoice',
    S2S_TTS_MODEL_DIR: await tinyTtsModelDir(),
    S2S_TTS_MAX_STREAMS: '4',
    S2S_MAX_CONVERSATIONS: '6',
    S2S_SESSION_IDLE_MS: '20000',
  });
  ttsPort = Number(env['S2S_TTS_PORT']);
  handler = await createS2sHandler({ log, env });
  server = createServer((_req, res) => res.writeHead(404).end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  handler.serveSessionsOn(server, TOKEN);
  url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/ws?token=${TOKEN}`;
  question = await makeUtterance([{ silenceMs: 300 }, { say: 'What is the capital of France?' }, { silenceMs: 700 }]);
}, 120_000);
afterAll(async () => {
  await handler?.dispose();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
});

const job = (id: string, input: unknown): WorkerJob => ({ id, input, log, progress: async () => undefined });

describe('the real TTS engine on the tiny model (CPU profile)', () => {
  it('the worker runs the real engine: /config says vibevoice, from the child it spawned', async () => {
    const config = (await (await fetch(`http://127.0.0.1:${ttsPort}/config`)).json()) as { engine: string; voices: string[]; max_streams: number };
    expect(config.engine).toBe('vibevoice');
    expect(config.voices).toContain('en-Tiny_man');
    expect(config.max_streams).toBe(4);
    expect(handler.engines.tts.voices).toEqual(config.voices);
  });

  it('a turn job is answered with the engine’s audio', async () => {
    const events: { type: string; [k: string]: unknown }[] = [];
    const audio = wavOf(question.samples, 16_000).toString('base64');
    for await (const event of handler.handle(job('tiny-turn', { audio, max_response_tokens: 16 }), new AbortController().signal)) events.push(event as { type: string });
    const chunks = events.filter((e) => e.type === 'audio');
    expect(chunks.length).toBeGreaterThan(0);
    expect(chunks.every((c) => c['sample_rate'] === 24_000 && c['format'] === 'pcm16')).toBe(true);
    const metrics = events.find((e) => e.type === 'metrics')!;
    expect(metrics['tts_ttfb_ms'] as number).toBeGreaterThan(0);
    expect(metrics['audio_out_ms'] as number).toBeGreaterThan(0);
    expect(events.at(-1)?.type).toBe('done');
  }, 120_000);

  it('a live session is answered with the engine’s audio', async () => {
    const client = await SessionClient.connect(url);
    await client.waitFor((e) => e.type === 'ready');
    await client.sendAudio(question.samples);
    const metrics = await client.waitFor((e) => e.type === 'metrics', 90_000);
    expect(client.audioSamples()).toBeGreaterThan(0);
    expect(metrics['audio_out_ms'] as number).toBeGreaterThan(0);
    client.send({ type: 'end' });
    await client.closed;
  }, 120_000);

  it('four live sessions at once share the one TTS server: all are answered, none waits for another’s utterance, nothing says busy', async () => {
    const clients = await Promise.all([0, 1, 2, 3].map(() => SessionClient.connect(url)));
    await Promise.all(clients.map((c) => c.waitFor((e) => e.type === 'ready')));
    await Promise.all(clients.map((c) => c.sendAudio(question.samples)));
    await Promise.all(clients.map((c) => c.waitFor((e) => e.type === 'metrics', 110_000)));
    // Each answer's audio started before any other answer had finished arriving: they were spoken side by side.
    const firstAudio = clients.map((c) => c.received.find((r) => r.kind === 'audio')!.at);
    const lastAudio = clients.map((c) => c.received.filter((r) => r.kind === 'audio').at(-1)!.at);
    expect(Math.max(...firstAudio)).toBeLessThan(Math.min(...lastAudio));
    for (const client of clients) {
      expect(client.audioSamples()).toBeGreaterThan(0);
      expect(client.events('error')).toEqual([]);
    }
    expect(lines.some((line) => /busy/i.test(line))).toBe(false);
    for (const client of clients) client.send({ type: 'end' });
    await Promise.all(clients.map((c) => c.closed));
  }, 120_000);
});

describe('bad input and faults on the real engine: a named error for that stream, the others go on', () => {
  let tts: TtsServerClient;
  beforeAll(async () => {
    // A client of the worker's own server, beside the worker's streams.
    tts = new TtsServerClient(await attachedServer(ttsPort), {}, log);
  });

  it('a bad option, text past the limit and a cancel mid-step each end only their own stream', async () => {
    const live = () => new AbortController().signal;
    const good = speakText(tts, 'A stream that goes on while the others fail, word after word after word.', { signal: live() });
    const goodDone = collect(good);
    const badOption = speakText(tts, 'Hello there.', { signal: live(), steps: 999 });
    await expect(collect(badOption)).rejects.toMatchObject({ code: 'TTS_BAD_OPTION' });
    const cancelled = new AbortController();
    const cut = speakText(tts, 'This one is cut while the engine is in the middle of a step, long before its end.', { signal: cancelled.signal });
    const cutAudio: Int16Array[] = [];
    for await (const chunk of cut) {
      cutAudio.push(chunk);
      cancelled.abort();
    }
    expect(cutAudio).toHaveLength(1);
    const tooLong = tts.open({ signal: live() });
    for (let i = 0; i < 2_500; i++) tooLong.push('many words ');
    tooLong.end();
    await expect(collect(tooLong)).rejects.toMatchObject({ code: 'TTS_TEXT_TOO_LONG', serverCode: 'text_too_long' });
    expect((await goodDone).length).toBeGreaterThan(0);
    // The engine is whole: the worker's next answer is spoken.
    const after = await collect(speakText(tts, 'And the engine still speaks.', { signal: live() }));
    expect(after.length).toBeGreaterThan(0);
  }, 120_000);
});
