/**
 * Many conversations per worker (issue 19), on the test profile's real engines (tiny Whisper and
 * Qwen, the espeak-ng TTS double batching 4 streams) behind a load-balancing endpoint's HTTP server
 * with S2S_MAX_CONVERSATIONS=4: four live sessions talking at once are all answered, each with its
 * own answer (exactly the words, transcript and audio it got asking alone: greedy sampling makes the
 * answer a function of its question and prompt, and each session speaks with its own voice), their first audio within 1.5x of asking alone (medians and
 * p90 over several turns, measured in this run), and a fifth session is refused with HTTP 429 and a
 * JSON reason before its upgrade while /ping reports the worker full, and the four carry on.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { HealthServer } from '../../handler/local/health-server.js';
import type { S2sHandler } from '../../handler/s2s-handler.js';
import { makeUtterance, type Utterance } from '../fixtures/speech.js';
import { SessionClient } from '../helpers/session-client.js';
import { testProfileHandler } from '../helpers/test-profile.js';
import { freePort } from '../helpers/tts-sidecar.js';

const TOKEN = 'capacity-test-token-0123456789';
const QUESTIONS = ['What is the capital of France?', 'Can you tell me a joke?', 'How far away is the moon?', 'Why is the sky blue?'];
/**
 * Each conversation its own voice (and system prompt), so their answers' audio differs: the tiny
 * models answer every question with the same words, and the espeak double's voices differ in length.
 */
const PERSONAS = [
  { system_prompt: 'You are a gardener who loves apples and pears.', voice: 'en-Carter_man' },
  { system_prompt: 'You are a sailor on a wide river at night.', voice: 'en-Emma_woman' },
  { system_prompt: 'Answer like a mountain guide counting steps.', voice: 'en-Davis_man' },
  { system_prompt: 'Reply as a violin teacher, in musical terms.', voice: 'en-Frank_man' },
];
/**
 * Cycles of two questions alone, one after another, then the four at once: 8 turns alone and 16 at
 * once in all. The 2 cores of a build machine are shared by every engine here (tiny models on the
 * CPU) and by whatever else runs (another test file): interleaving gives both sides the same
 * background, 16 turns at once let one turn slow for reasons of its own fall outside the p90, and the
 * 8 alone make the p90 alone their slowest, which errs on the generous side.
 */
const CYCLES = 4;

let handler: S2sHandler;
let health: HealthServer;
let url: string;
let questions: Utterance[];

beforeAll(async () => {
  const ttsPort = await freePort();
  handler = await testProfileHandler({
    S2S_TTS_PORT: String(ttsPort),
    S2S_MAX_CONVERSATIONS: '4',
    S2S_TTS_MAX_STREAMS: '4',
    S2S_TEMPERATURE: '0',
    S2S_MAX_RESPONSE_TOKENS: '16',
  });
  // As handler/start.ts wires a load-balancing endpoint: /ping and the sessions on one HTTP server.
  health = await HealthServer.start(0, '127.0.0.1');
  handler.serveSessionsOn(health.httpServer, TOKEN);
  health.load = () => handler.conversations();
  health.state = 'ready';
  url = `ws://127.0.0.1:${health.port}/ws?token=${TOKEN}`;
  questions = await Promise.all(QUESTIONS.map((say) => makeUtterance([{ silenceMs: 200 }, { say }, { silenceMs: 1_300 }])));
}, 120_000);

afterAll(async () => {
  await health?.close();
  await handler?.dispose();
});

interface Answer {
  transcript: string;
  text: string;
  audioSamples: number;
  firstAudioMs: number;
  /** Where the first audio's time went (for the failure message). */
  parts: string;
}

/** One session, one spoken question at real time; resolves with what came back once the answer is done. */
async function ask(question: Utterance, persona: (typeof PERSONAS)[number], onReady?: () => void): Promise<Answer> {
  const client = await SessionClient.connect(url);
  await client.waitFor((e) => e.type === 'ready');
  client.send({ type: 'config', ...persona });
  onReady?.();
  await client.sendAudio(question.samples, { frameMs: 100, realtime: true });
  const metrics = await client.waitFor((e) => e.type === 'metrics', 60_000);
  await new Promise((resolve) => setTimeout(resolve, 200));
  client.ws.close();
  await client.closed;
  return {
    transcript: client.events('transcript').map((e) => e['text']).join(' '),
    text: client.events('text').map((e) => e['delta']).join(''),
    audioSamples: client.audioSamples(),
    firstAudioMs: metrics['first_audio_ms'] as number,
    parts: ['endpoint_ms', 'asr_critical_ms', 'asr_wait_ms', 'llm_first_clause_ms', 'llm_wait_ms', 'tts_ttfb_ms', 'tts_wait_ms', 'overhead_ms', 'preemptive']
      .map((key) => `${key.replace(/_ms$/, '')} ${String(metrics[key])}`)
      .join(', '),
  };
}

/** An upgrade that is refused: its HTTP status and JSON body. */
function refusedUpgrade(target: string): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(target);
    ws.once('open', () => reject(new Error('the session was accepted')));
    ws.once('error', () => undefined);
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(body) as Record<string, unknown> }));
    });
  });
}

function ping(): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port: health.port, path: '/ping' }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(body) as Record<string, unknown> }));
    })
      .once('error', reject)
      .end();
  });
}

const quantile = (values: number[], q: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
};

describe('many conversations on one worker', () => {
  it('4 sessions at once: all answered, each its own answer, first audio within 1.5x of alone; a 5th gets 429 and /ping says full while the 4 carry on', async () => {
    expect(await ping()).toMatchObject({ status: 200, body: { status: 'ready', conversations: 0, max: 4 } });

    const alone: Answer[][] = questions.map(() => []);
    const together: Answer[][] = questions.map(() => []);
    let probed: Promise<{ refused: Awaited<ReturnType<typeof refusedUpgrade>>; pinged: Awaited<ReturnType<typeof ping>> }> | null = null;
    for (let round = 0; round < CYCLES; round++) {
      // Alone: two of the questions, each in a session of its own, one after another.
      for (const i of [(2 * round) % questions.length, (2 * round + 1) % questions.length]) alone[i]!.push(await ask(questions[i]!, PERSONAS[i]!));
      // Together: the four sessions at once, their questions colliding.
      let ready = 0;
      let allReady!: () => void;
      const four = new Promise<void>((resolve) => (allReady = resolve));
      const answers = Promise.all(questions.map((question, i) => ask(question, PERSONAS[i]!, () => ++ready === questions.length && allReady())));
      if (round === 0) {
        await four;
        // While the four talk: the fifth is refused before its upgrade, and /ping says the worker is full.
        probed = Promise.all([refusedUpgrade(url), ping()]).then(([refused, pinged]) => ({ refused, pinged }));
      }
      (await answers).forEach((answer, i) => together[i]!.push(answer));
    }

    const { refused, pinged } = await probed!;
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ error: 'worker_full', conversations: 4, max: 4 });
    expect(String(refused.body['message'])).toContain('S2S_MAX_CONVERSATIONS');
    expect(pinged).toMatchObject({ status: 429, body: { status: 'full', conversations: 4, max: 4 } });

    // Every session was answered, with its own answer: the words, transcript and audio it got alone.
    for (const [i, answers] of together.entries()) {
      for (const answer of answers) {
        expect(answer.text.length).toBeGreaterThan(0);
        expect(answer.audioSamples).toBeGreaterThan(0);
        expect(answer.transcript).toBe(alone[i]![0]!.transcript);
        expect(answer.text).toBe(alone[i]![0]!.text);
        // The espeak double speaks streamed text in pieces, so the length depends a little on how the text
        // arrived; another session's answer (another voice) in this one would not be within a quarter of it.
        expect(Math.abs(answer.audioSamples - alone[i]![0]!.audioSamples) / alone[i]![0]!.audioSamples).toBeLessThan(0.25);
      }
    }

    const aloneMs = alone.flat().map((a) => a.firstAudioMs);
    const togetherMs = together.flat().map((a) => a.firstAudioMs);
    const slowest = together.flat().sort((a, b) => b.firstAudioMs - a.firstAudioMs)[0]!;
    const report = `first audio alone p50 ${quantile(aloneMs, 0.5)} p90 ${quantile(aloneMs, 0.9)}; four at once p50 ${quantile(togetherMs, 0.5)} p90 ${quantile(togetherMs, 0.9)} (ms); slowest at once: ${slowest.firstAudioMs} (${slowest.parts})`;
    // The measured comparison, shown with the run (timing goals live in benches; this is the acceptance figure).
    console.info(report);
    expect(quantile(togetherMs, 0.5), report).toBeLessThanOrEqual(1.5 * quantile(aloneMs, 0.5));
    expect(quantile(togetherMs, 0.9), report).toBeLessThanOrEqual(1.5 * quantile(aloneMs, 0.9));

    // All four left: the worker takes sessions again.
    expect(await ping()).toMatchObject({ status: 200, body: { status: 'ready', conversations: 0, max: 4 } });
  }, 240_000);
});
