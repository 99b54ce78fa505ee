/**
 * The turn pipeline in process, on the test profile's real engines, with two swaps where a test
 * needs them: the endless tiny model (an answer that never ends on its own) to time cancellation,
 * and an LLM double with exact words to check history and event order.
 */
import { writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_QWEN_REPLY, tinyQwenGguf } from '../../builder/tiny-models/tiny-qwen.js';
import { createHandlerFor, type S2sHandler } from '../../handler/s2s-handler.js';
import type { WorkerJob } from '../../handler/runtime/types.js';
import type { ChatMessage, Conversation, ConversationOptions } from '../../src/llm/llm.js';
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

  // How fast they stop is a benchmark (npm run bench, "cancel mid-answer"); these check that they do.
  it('cancelling mid-response stops the TTS: the answer that never ends by itself ends', async () => {
    const abort = new AbortController();
    const iterator = endless.handle(job({ audio: question }), abort.signal)[Symbol.asyncIterator]();
    for (;;) {
      const { value, done } = await iterator.next();
      if (done) throw new Error('the endless answer ended by itself');
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
    expect(after.find((e) => e.type === 'metrics')!['interrupted']).toBe(true);
  });

  it('cancelling mid-response stops the LLM within a token, far short of its limit', async () => {
    // The real conversation, watched: the cut is made at the first text delta, while the LLM is
    // certainly generating (at the first audio it could in principle have reached its limit).
    let conversation: Conversation | null = null;
    const llm = { openConversation: async (options?: ConversationOptions) => (conversation = await endless.engines.llm.openConversation(options)), dispose: async () => undefined };
    const handler = createHandlerFor({ ...endless.engines, llm }, endless.config, log);
    const abort = new AbortController();
    const iterator = handler.handle(job({ audio: question }), abort.signal)[Symbol.asyncIterator]();
    for (;;) {
      const { value, done } = await iterator.next();
      if (done) throw new Error('the endless answer ended by itself');
      if ((value as { type: string }).type === 'text') break;
    }
    abort.abort();
    for (let next = await iterator.next(); !next.done; next = await iterator.next());
    const stats = (conversation as Conversation | null)!.lastStats!;
    expect(stats.aborted).toBe(true);
    expect(stats.outputTokens).toBeLessThan(2000);
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

    // The same on the real engine: its conversation's own history (node-llama-cpp's chat history),
    // not a double's record of what it was told.
    let history: readonly ChatMessage[] = [];
    const watched = {
      openConversation: async (options?: ConversationOptions) => {
        const conversation = await real.engines.llm.openConversation(options);
        const dispose = conversation.dispose.bind(conversation);
        conversation.dispose = () => {
          history = [...conversation.history];
          dispose();
        };
        return conversation;
      },
      dispose: async () => undefined,
    };
    const onEngine = createHandlerFor({ ...real.engines, llm: watched }, real.config, log);
    await collect(onEngine.handle(job({ turns: [{ audio: question }, { audio: question }], history: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!' }] }), new AbortController().signal));
    expect(history).toEqual([
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello!' },
      { role: 'user', content: 'hello world' },
      { role: 'assistant', content: TINY_QWEN_REPLY },
      { role: 'user', content: 'hello world' },
      { role: 'assistant', content: TINY_QWEN_REPLY },
    ]);
    await real.dispose();
  }, 90_000);
});
