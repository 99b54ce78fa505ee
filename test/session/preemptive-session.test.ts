/**
 * Live sessions with preemptive answers and honest metrics, over the real WebSocket, real Silero VAD
 * and the espeak-ng TTS double, with ASR and LLM doubles where exact words are needed: a pause
 * shorter than the endpoint throws the held answer away without a trace (the client sees none of
 * its text or audio, the history holds one user turn); a clean question is answered with the answer
 * started during the endpoint wait; and the frame wait of large client frames shows in the metrics.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHandlerFor, type S2sHandler } from '../../handler/s2s-handler.js';
import type { Asr } from '../../src/asr/asr.js';
import type { Llm } from '../../src/llm/llm.js';
import type { Vad } from '../../src/vad/vad.js';
import { Logger } from '../../src/log/logger.js';
import { ScriptedAsrDouble } from '../doubles/scripted-asr-double.js';
import { ScriptedLlmDouble } from '../doubles/scripted-llm-double.js';
import { makeUtterance, type Utterance } from '../fixtures/speech.js';
import { SessionClient } from '../helpers/session-client.js';
import { testProfileHandler } from '../helpers/test-profile.js';

const TOKEN = 'test-session-token-0123456789';
const log = new Logger({ level: 'ERROR', jsonLines: true, write: () => undefined });
const answerTo = (text: string) => `You said ${text.replace(/[?.!]$/, '')}. Here is my answer.`;
let real: S2sHandler;
let paused: Utterance;
let plain: Utterance;

beforeAll(async () => {
  real = await testProfileHandler();
  // A 400 ms pause after "and" (the adaptive endpoint waits 900 ms there): one turn.
  paused = await makeUtterance([{ silenceMs: 300 }, { say: 'What time is it' }, { silenceMs: 400 }, { say: 'in Paris' }, { silenceMs: 1500 }]);
  plain = await makeUtterance([{ silenceMs: 300 }, { say: 'What time is it' }, { silenceMs: 1500 }]);
}, 60_000);
afterAll(async () => {
  await real?.dispose();
});

/** A session server whose ASR and/or LLM are swapped for doubles. */
async function serve(engines: { asr?: Asr; llm?: Llm; vad?: Vad }): Promise<{ url: string; close(): Promise<void> }> {
  const handler = createHandlerFor({ ...real.engines, ...engines }, real.config, log);
  const server: Server = createServer((_req, res) => res.writeHead(404).end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  handler.serveSessionsOn(server, TOKEN);
  return {
    url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/ws?token=${TOKEN}`,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('preemptive answers in a live session', () => {
  it('a pause shorter than the endpoint: none of the held answer reaches the client, the history holds one user turn', async () => {
    const asr = new ScriptedAsrDouble({ text: (samples) => (samples.length < 16_000 * 1.6 ? 'What time is it and' : 'What time is it in Paris?') });
    const llm = new ScriptedLlmDouble({ replies: [], replyTo: answerTo, delayMs: 2 });
    const server = await serve({ asr, llm });
    try {
      const client = await SessionClient.connect(server.url);
      await client.sendAudio(paused.samples, { frameMs: 20, realtime: true });
      const metrics = await client.waitFor((e) => e.type === 'metrics');
      // The speculative transcript before the pause was heard, and an answer was started on it...
      expect(asr.calls.map((c) => c.text)).toContain('What time is it and');
      expect(metrics['llm_tokens_wasted'] as number).toBeGreaterThan(0);
      // ...but the client saw one turn, and only the answer to the whole question.
      expect(client.events('transcript').map((e) => e['text'])).toEqual(['What time is it in Paris?']);
      expect(client.events('response_start')).toHaveLength(1);
      expect(client.events('text').map((e) => e['delta']).join('')).toBe(answerTo('What time is it in Paris?'));
      expect(llm.conversations[0]!.history).toEqual([
        { role: 'user', content: 'What time is it in Paris?' },
        { role: 'assistant', content: answerTo('What time is it in Paris?') },
      ]);
      // The audio the client got is the answer's own (all of it, nothing more).
      expect(client.audioSamples()).toBe(Math.round(((metrics['audio_out_ms'] as number) * 24_000) / 1000));
      client.send({ type: 'end' });
      const end = await client.waitFor((e) => e.type === 'session_end');
      expect(end['llm_tokens_wasted']).toBe(metrics['llm_tokens_wasted']);
      expect(end['llm_tokens_out']).toBe(metrics['llm_tokens_out']);
    } finally {
      await server.close();
    }
  }, 60_000);

  it('a clean question is answered with the answer started during the endpoint wait', async () => {
    const llm = new ScriptedLlmDouble({ replies: [], replyTo: answerTo, delayMs: 1 });
    const server = await serve({ asr: new ScriptedAsrDouble({ text: 'What time is it?' }), llm });
    try {
      const client = await SessionClient.connect(server.url);
      await client.sendAudio(plain.samples, { frameMs: 20, realtime: true });
      const metrics = await client.waitFor((e) => e.type === 'metrics');
      expect(metrics['preemptive']).toBe(true);
      expect(client.events('text').map((e) => e['delta']).join('')).toBe(answerTo('What time is it?'));
      expect(llm.conversations[0]!.history.filter((m) => m.role === 'user')).toHaveLength(1);
      client.ws.close();
    } finally {
      await server.close();
    }
  }, 60_000);
});

describe('honest live metrics', () => {
  /**
   * The turn closes at `closedAt` (stream position): 400 ms of silence after the speech end (13 VAD
   * frames of 512). With 320 ms frames the server hears that sample only when its frame is full.
   */
  const closedAtOf = (endMs: number) => Math.round(endMs * 16) + 13 * 512;
  const frameWaitMs = (closedAt: number, frame: number) => ((Math.ceil(closedAt / frame) * frame - closedAt) / 16_000) * 1000;

  async function endpointMs(samples: Float32Array, frameMs: number) {
    const client = await SessionClient.connect(`${serverUrl}?token=${TOKEN}`);
    await client.sendAudio(samples, { frameMs, realtime: true });
    const metrics = await client.waitFor((e) => e.type === 'metrics');
    const end = client.events('speech_end')[0]!;
    client.ws.close();
    return { endpoint: metrics['endpoint_ms'] as number, firstAudio: metrics['first_audio_ms'] as number, endMs: end['end_ms'] as number };
  }

  let serverUrl: string;
  let close: () => Promise<void>;
  beforeAll(async () => {
    // The tiny Whisper's words carry no endpoint cue and the turn model is off (its verdict would come
    // in wall time): every turn closes after the 400 ms base.
    const vad = real.engines.vad;
    const server = await serve({ vad: { openStream: (overrides = {}) => vad.openStream({ ...overrides, turnModel: false }), dispose: async () => undefined } });
    serverUrl = server.url.split('?')[0]!;
    close = server.close;
  });
  afterAll(() => close());

  it('with 320 ms frames, endpoint_ms and first_audio_ms include the wait for the frame that carried the end', async () => {
    const small = await endpointMs(plain.samples, 20);
    // Lead silence (whole VAD frames, so the VAD sees the same frames) that puts the closing sample
    // just after a 320 ms frame begins: the server then waits most of a frame to hear it.
    const closedAt = closedAtOf(small.endMs);
    const shift = Array.from({ length: 10 }, (_, j) => j).reduce((best, j) => (frameWaitMs(closedAt + 512 * j, 5_120) > frameWaitMs(closedAt + 512 * best, 5_120) ? j : best), 0);
    const shifted = new Float32Array(plain.samples.length + 512 * shift);
    shifted.set(plain.samples, 512 * shift);
    const large = await endpointMs(shifted, 320);
    const wait = frameWaitMs(closedAt + 512 * shift, 5_120);
    expect(large.endMs).toBeCloseTo(small.endMs + (512 * shift) / 16, 0);
    expect(wait).toBeGreaterThan(250);
    console.info('endpoint_ms with 20 ms frames', small.endpoint, 'with 320 ms frames', large.endpoint, 'expected frame wait', wait);
    // The audio-time endpoint is 416 ms either way (what a turn job reports); the live metric adds the
    // frame wait, never less (processing delays on a busy machine only add to it).
    expect(small.endpoint).toBeGreaterThanOrEqual(416 - 1);
    expect(large.endpoint).toBeGreaterThanOrEqual(416 + wait - 1);
    expect(large.firstAudio).toBeGreaterThanOrEqual(large.endpoint);
  }, 60_000);
});

/**
 * A VAD whose streams tell the test how much audio they have heard (their position, in samples, after
 * each push), and when they have heard so much more: a clock in stream time, for doubles whose work
 * should take a given span of the user's audio whatever the machine's speed.
 */
function streamClock(vad: Vad) {
  let position = 0;
  const waiters: { at: number; resolve: () => void }[] = [];
  const watched: Vad = {
    openStream(overrides) {
      const stream = vad.openStream(overrides);
      const push = stream.push.bind(stream);
      stream.push = async (samples) => {
        const events = await push(samples);
        position = stream.position;
        for (const waiter of waiters.filter((w) => w.at <= position)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve();
        }
        return events;
      };
      return stream;
    },
    dispose: async () => undefined,
  };
  return {
    vad: watched,
    get position() {
      return position;
    },
    /** Resolves once the stream has heard `ms` more audio than it has now. */
    after(ms: number): Promise<void> {
      return new Promise((resolve) => waiters.push({ at: position + Math.round(ms * 16), resolve }));
    },
  };
}

describe('incremental transcription', () => {
  it('sends the words so far while the user speaks, never queueing a decode behind another', async () => {
    const long = await makeUtterance([{ silenceMs: 200 }, { say: 'I would like to hear a story about a brave little dragon who learned to fly' }, { silenceMs: 1500 }]);
    // A slow decoder, slow in stream time: a partial decode ends once the server has heard 700 ms
    // more audio (longer than the 500 ms interval), however fast or loaded the machine is. The
    // partials due meanwhile must be skipped, not queued. (The turn's own decodes are immediate.) The
    // turn model is off: its verdict comes in wall time, and how the turn ends is not this test's matter.
    const vad = real.engines.vad;
    const clock = streamClock({ openStream: (overrides = {}) => vad.openStream({ ...overrides, turnModel: false }), dispose: async () => undefined });
    const decodes: { from: number; to: number }[] = [];
    const asr = new ScriptedAsrDouble({
      text: (samples) => `words up to ${Math.round(samples.length / 16)} ms`,
      until: async ({ priority }) => {
        if (priority !== 'partial') return;
        const decode = { from: clock.position, to: Number.NaN };
        decodes.push(decode);
        await clock.after(700);
        decode.to = clock.position;
      },
    });
    const server = await serve({ asr, llm: new ScriptedLlmDouble({ replies: ['Once upon a time.'] }), vad: clock.vad });
    const client = await SessionClient.connect(server.url);
    try {
      await client.sendAudio(long.samples, { frameMs: 20, realtime: true });
      await client.waitFor((e) => e.type === 'metrics');
      const types = client.events().map((e) => e.type);
      const partials = client.events('partial_transcript');
      expect(partials.length).toBeGreaterThan(0);
      // All of them came before the turn's transcript.
      expect(types.lastIndexOf('partial_transcript')).toBeLessThan(types.indexOf('transcript'));
      // No decode started while another ran: each began after the one before had ended.
      for (const [i, decode] of decodes.entries()) if (i > 0) expect(decode.from).toBeGreaterThanOrEqual(decodes[i - 1]!.to);
      // Skipped, not queued: each partial decoded the speech as it was when it started, so each heard
      // at least the 700 ms of the decode before it more (less one 32 ms VAD frame of alignment), not
      // the 500 ms a queued one would.
      const heardMs = partials.map((p) => Number(/(\d+) ms/.exec(p['text'] as string)![1]));
      for (const [i, heard] of heardMs.entries()) if (i > 0) expect(heard - heardMs[i - 1]!).toBeGreaterThanOrEqual(700 - 32);
      // Hence at most one partial per 700 ms of speech (plus the one the endpoint wait may hold).
      const speechMs = long.truth[0]!.endMs - long.truth[0]!.startMs;
      expect(partials.length).toBeLessThanOrEqual(Math.ceil(speechMs / 700) + 1);
      expect(client.events('transcript')).toHaveLength(1);
    } finally {
      client.ws.close();
      await server.close();
    }
  }, 60_000);
});
