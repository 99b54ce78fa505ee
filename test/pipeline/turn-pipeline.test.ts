/**
 * The turn pipeline in process, on the test profile's real engines, with two swaps where a test
 * needs them: the endless tiny model (an answer that never ends on its own) to time cancellation,
 * and an LLM double with exact words to check history and event order.
 */
import { writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyQwenGguf } from '../../builder/tiny-models/tiny-qwen.js';
import { createHandlerFor, type S2sHandler } from '../../handler/s2s-handler.js';
import type { WorkerJob } from '../../handler/runtime/types.js';
import { Logger } from '../../src/log/logger.js';
import { makeUtterance, wavOf } from '../fixtures/speech.js';
import { ScriptedLlmDouble } from '../doubles/scripted-llm-double.js';
import { respond } from '../../src/pipeline/respond.js';
import { collect } from '../helpers/collect.js';
import { testProfileEnv, testProfileHandler } from '../helpers/test-profile.js';

const lines: string[] = [];
const log = new Logger({ level: 'DEBUG', jsonLines: true, write: (line) => lines.push(line) });
let endless: S2sHandler;
let question: string;

beforeAll(async () => {
  const env = await testProfileEnv({ S2S_MAX_RESPONSE_TOKENS: '2000', S2S_WARMUP: '1' });
  await writeFile(`${env['S2S_MODELS_DIR']}/test/tiny-qwen.gguf`, tinyQwenGguf({ endless: true }));
  const { createS2sHandler } = await import('../../handler/s2s-handler.js');
  endless = await createS2sHandler({ log, env });
  const utterance = await makeUtterance([{ silenceMs: 300 }, { say: 'Tell me a very long story.' }, { silenceMs: 600 }]);
  question = wavOf(utterance.samples, 16_000).toString('base64');
}, 60_000);
afterAll(async () => {
  await endless?.dispose();
});

const job = (input: unknown): WorkerJob => ({ id: 'test-job', input, log, progress: async () => undefined });

describe('turn pipeline', () => {
  it('warmed every engine at start, before the first job, and logged each one\'s time', () => {
    const warmed = lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((entry) => entry['message'] === 'engines warmed up');
    expect(warmed).toBeDefined();
    for (const key of ['vad_ms', 'asr_ms', 'llm_ms', 'tts_ms', 'total_ms']) expect(typeof warmed![key]).toBe('number');
  });

  // How fast they stop is a benchmark (npm run bench, "cancel mid-answer"); this checks that they do.
  it('cancelling mid-response stops the TTS and the LLM', async () => {
    const abort = new AbortController();
    const iterator = endless.handle(job({ audio: question }), abort.signal)[Symbol.asyncIterator]();
    let texts = 0;
    for (;;) {
      const { value, done } = await iterator.next();
      if (done) throw new Error('the endless answer ended by itself');
      if ((value as { type: string }).type === 'text') texts++;
      if ((value as { type: string }).type === 'audio') break;
    }
    abort.abort();
    // Drain: the generator ends only when the LLM stream and the TTS speaker have both stopped.
    const after: { type: string; [k: string]: unknown }[] = [];
    for (;;) {
      const { value, done } = await iterator.next();
      if (done) break;
      after.push(value as { type: string });
    }
    // The endless answer ended (so the speaker stopped) and the LLM did not run on to its 2000-token limit.
    expect(texts).toBeGreaterThan(0);
    const metrics = after.find((e) => e.type === 'metrics')!;
    expect(metrics['interrupted']).toBe(true);
    expect(metrics['llm_tokens_out'] as number).toBeLessThan(2000);
  });

  it('an interruption before the first LLM token ends the answer quietly, with its stats', async () => {
    const conversation = await endless.engines.llm.openConversation();
    const abort = new AbortController();
    const response = respond(conversation, endless.engines.tts, 'Tell me a very long story.', { signal: abort.signal, maxTokens: 2000 });
    abort.abort(); // before the first token: the LLM is still in its prefill
    expect(await collect(response.items)).toEqual([]);
    expect(response.timings.llm).toMatchObject({ aborted: true, outputTokens: 0 });
    conversation.dispose();
  });

  it('keeps the conversation across turns: each transcript and answer joins the history', async () => {
    const real = await testProfileHandler();
    const llm = new ScriptedLlmDouble({ replies: ['Paris is the capital, my friend.', 'Madrid, I believe, is the answer.', 'And Rome is the last one.'] });
    const handler = createHandlerFor({ ...real.engines, llm }, real.config, log);
    const events: { type: string; [k: string]: unknown }[] = [];
    for await (const event of handler.handle(job({ turns: [{ audio: question }, { audio: question }, { audio: question }], history: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!' }] }), new AbortController().signal)) {
      events.push(event as { type: string });
    }
    expect(llm.conversations).toHaveLength(1);
    expect(llm.conversations[0]!.history).toEqual([
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello!' },
      { role: 'user', content: 'hello world' },
      { role: 'assistant', content: 'Paris is the capital, my friend.' },
      { role: 'user', content: 'hello world' },
      { role: 'assistant', content: 'Madrid, I believe, is the answer.' },
      { role: 'user', content: 'hello world' },
      { role: 'assistant', content: 'And Rome is the last one.' },
    ]);
    expect(llm.conversations[0]!.disposed).toBe(true);
    const text = (turn: number) => events.filter((e) => e.type === 'text' && e['turn'] === turn).map((e) => e['delta']).join('');
    expect([text(0), text(1), text(2)]).toEqual(['Paris is the capital, my friend.', 'Madrid, I believe, is the answer.', 'And Rome is the last one.']);
    // Per turn: vad, transcript, then text/audio, then metrics; turns strictly in order.
    const turnsSeen = events.filter((e) => e.type !== 'done').map((e) => e['turn'] as number);
    expect(turnsSeen).toEqual([...turnsSeen].sort());
    await real.dispose();
  }, 60_000);
});
