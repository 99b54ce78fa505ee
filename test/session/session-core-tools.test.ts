/**
 * Tool calling in the protocol-neutral session core, on the test profile's real engines (tiny
 * Whisper and Qwen GGUFs, the VibeVoice protocol double): a function call becomes its own item and
 * event, the client's output continues the answer, which is spoken; the session keeps taking turns
 * while a tool runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_QWEN_REPLY, TINY_QWEN_TOOL_ANSWER, TINY_QWEN_TOOL_CALL, TINY_QWEN_WEATHER_TOOL } from '../../builder/tiny-models/tiny-qwen.js';
import type { S2sHandler } from '../../handler/s2s-handler.js';
import type { Conversation } from '../../src/llm/llm.js';
import { ToolSet } from '../../src/llm/tools.js';
import { Logger } from '../../src/log/logger.js';
import { SessionCore, type ConversationItem, type CoreEvent } from '../../src/session/session-core.js';
import { testProfileHandler } from '../helpers/test-profile.js';

const log = new Logger({ level: 'ERROR', jsonLines: true, write: () => undefined });
const weather = await ToolSet.compile([TINY_QWEN_WEATHER_TOOL]);

let handler: S2sHandler;
beforeAll(async () => {
  handler = await testProfileHandler();
}, 120_000);
afterAll(async () => {
  await handler?.dispose();
});

interface Recorded {
  core: SessionCore;
  conversation: Conversation;
  events: CoreEvent[];
  audioSamples: () => number;
  next: <T extends CoreEvent['type']>(type: T, after?: number) => Promise<Extract<CoreEvent, { type: T }>>;
}

async function openCore(): Promise<Recorded> {
  const events: CoreEvent[] = [];
  let samples = 0;
  const conversation = await handler.engines.llm.openConversation();
  const core = new SessionCore(
    handler.engines,
    conversation,
    {
      voice: handler.engines.tts.defaultVoice,
      maxTokens: 128,
      temperature: 0.7,
      cfg: 1.5,
      steps: 5,
      vad: {},
      minInterruptionMs: 300,
      outputLeadMs: 200,
      idleTimeoutMs: 60_000,
      maxDurationMs: 120_000,
      shutdownGraceMs: 1_000,
      maxBacklogMs: 10_000,
      maxUnreadBytes: 96_000,
      stuckMs: 30_000,
      maxItems: 1_000,
      maxTextChars: 400_000,
    },
    log,
    { event: (e) => events.push(e), audio: (pcm) => (samples += pcm.length), ended: () => undefined },
    new AbortController().signal,
  );
  void core.run();
  /** The first event of `type` at or after index `after` of the record. */
  const next = async <T extends CoreEvent['type']>(type: T, after = 0): Promise<Extract<CoreEvent, { type: T }>> => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const found = events.slice(after).find((e) => e.type === type);
      if (found) return found as Extract<CoreEvent, { type: T }>;
      if (Date.now() > deadline) throw new Error(`no ${type}; events: ${events.map((e) => e.type).join(', ')}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  return { core, conversation, events, audioSamples: () => samples, next };
}

const answerText = (events: CoreEvent[], answerId: string) =>
  events.flatMap((e) => (e.type === 'answer_text' && e.answerId === answerId ? [e.delta] : [])).join('');

describe('session core with tools', () => {
  it('a call becomes its own item; the output continues the answer, which is spoken', async () => {
    const { core, events, audioSamples, next } = await openCore();
    core.configure({ tools: weather });
    core.submitText('What is the weather in Paris tomorrow?');
    const call = await next('function_call');
    expect(call.item.functionCall).toEqual({ callId: expect.stringMatching(/^call_/), name: 'get_weather', arguments: JSON.stringify(TINY_QWEN_TOOL_CALL.arguments) });
    expect((await next('answer_done')).status).toBe('completed');
    expect(core.items.at(-1)).toMatchObject({ functionCall: { name: 'get_weather' } });

    expect(core.addFunctionOutput({ callId: 'call_unknown', output: '{}' })).toBe('no function call with call_id "call_unknown" is in the conversation');
    const output = core.addFunctionOutput({ callId: call.item.functionCall!.callId, output: '{"forecast":"sunny"}' }) as ConversationItem;
    expect(output.functionOutput).toEqual({ callId: call.item.functionCall!.callId, output: '{"forecast":"sunny"}' });
    expect(core.addFunctionOutput({ callId: call.item.functionCall!.callId, output: '{}' })).toMatch(/has an output already/);

    const mark = events.length;
    const before = audioSamples();
    const answerId = core.requestAnswer();
    const done = await next('answer_done', mark);
    expect(done.status).toBe('completed');
    expect(answerText(events, answerId)).toBe(TINY_QWEN_TOOL_ANSWER);
    expect(events.slice(mark).some((e) => e.type === 'function_call')).toBe(false);
    expect(audioSamples()).toBeGreaterThan(before);
    core.end('client_end');
  });

  it('stays responsive while the client runs the tool: a new turn is answered, a late output still reaches the model', async () => {
    const { core, conversation, events, next } = await openCore();
    core.configure({ tools: weather });
    core.submitText('Weather in Paris?');
    const call = await next('function_call');
    await next('answer_done');
    // The user speaks before the output arrives: the call joins the history with "no output".
    const mark = events.length;
    core.submitText('Are you still there?');
    const start = await next('answer_start', mark);
    expect((await next('answer_done', mark)).status).toBe('completed');
    expect(answerText(events, start.answerId)).toBe(TINY_QWEN_TOOL_ANSWER);
    // The output comes late: the model's history is rebuilt with it before the next answer.
    expect(typeof core.addFunctionOutput({ callId: call.item.functionCall!.callId, output: '{"forecast":"rain"}' })).toBe('object');
    const later = events.length;
    core.configure({ toolChoice: 'none' });
    const answerId = core.requestAnswer();
    expect((await next('answer_done', later)).status).toBe('completed');
    expect(answerText(events, answerId)).toBe(TINY_QWEN_TOOL_ANSWER);
    expect(conversation.history.flatMap((m) => m.functionCalls ?? [])).toEqual([{ name: 'get_weather', arguments: call.item.functionCall!.arguments, output: '{"forecast":"rain"}' }]);
    core.end('client_end');
  });

  it('tool_choice "none": no call, the plain spoken answer', async () => {
    const { core, events, next } = await openCore();
    core.configure({ tools: weather, toolChoice: 'none' });
    core.submitText('Weather in Paris?');
    const done = await next('answer_done');
    expect(done.status).toBe('completed');
    expect(events.some((e) => e.type === 'function_call')).toBe(false);
    expect(done.item.text).toBe(TINY_QWEN_REPLY);
    core.end('client_end');
  });

  it('an answer that is only a call adds no assistant message: the items are the question and the call, in the model history too', async () => {
    const { core, conversation, events, next } = await openCore();
    core.configure({ tools: weather });
    core.submitText('What is the weather in Paris tomorrow?');
    const call = await next('function_call');
    expect((await next('answer_done')).status).toBe('completed');
    const shape = () => core.items.map((i) => (i.functionCall ? 'call' : i.functionOutput ? 'output' : `${i.role}:${i.text}`));
    expect(shape()).toEqual(['user:What is the weather in Paris tomorrow?', 'call']);
    expect(call.previousItemId).toBe(core.items[0]!.id);
    // A system message put first makes the model's history be rebuilt from the items before the next answer.
    core.addItem({ role: 'system', text: 'Be brief.' }, null);
    core.addFunctionOutput({ callId: call.item.functionCall!.callId, output: '{"forecast":"sunny"}' });
    const mark = events.length;
    core.requestAnswer();
    expect((await next('answer_done', mark)).status).toBe('completed');
    expect(shape()).toEqual(['system:Be brief.', 'user:What is the weather in Paris tomorrow?', 'call', 'output', `assistant:${TINY_QWEN_TOOL_ANSWER}`]);
    const assistant = conversation.history.filter((m) => m.role === 'assistant');
    expect(assistant.every((m) => m.content !== '' || (m.functionCalls?.length ?? 0) > 0)).toBe(true);
    expect(assistant.flatMap((m) => m.functionCalls ?? []).map((c) => c.name)).toEqual(['get_weather']);
    core.end('client_end');
  });
});
