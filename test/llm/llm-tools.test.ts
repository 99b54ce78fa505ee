/**
 * Function calling through the real engine: node-llama-cpp loads the tiny Qwen2 GGUF, whose
 * hand-set weights call get_weather when functions are offered, answer TINY_QWEN_TOOL_ANSWER after
 * a function result, and say TINY_QWEN_REPLY otherwise (the badToolCall twin breaks the schema).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_QWEN_BAD_TOOL_CALL, TINY_QWEN_REPLY, TINY_QWEN_TOOL_ANSWER, TINY_QWEN_TOOL_CALL, TINY_QWEN_WEATHER_TOOL } from '../../builder/tiny-models/tiny-qwen.js';
import { InvalidInputError } from '../../src/errors.js';
import type { LlamaConversation } from '../../src/llm/llama-conversation.js';
import { LlamaCppLlm, type LlamaCppConfig } from '../../src/llm/llama-cpp-llm.js';
import type { ReplyPart } from '../../src/llm/llm.js';
import { ToolSet } from '../../src/llm/tools.js';
import { Logger } from '../../src/log/logger.js';
import { collect } from '../helpers/collect.js';
import { tinyQwenPath } from '../helpers/tiny-models.js';

const logged: { message: string }[] = [];
const log = new Logger({ level: 'WARN', jsonLines: true, write: (line) => logged.push(JSON.parse(line) as { message: string }) });
const config = (modelPath: string): LlamaCppConfig => ({
  modelPath,
  gpu: false,
  contextSize: 1024,
  maxConversations: 2,
  threads: 1,
  defaultMaxTokens: 128,
  defaultTemperature: 0.7,
});
const weather = await ToolSet.compile([TINY_QWEN_WEATHER_TOOL]);
const signal = () => new AbortController().signal;
const text = (parts: ReplyPart[]) => parts.flatMap((p) => (p.type === 'text' ? [p.text] : [])).join('');
const calls = (parts: ReplyPart[]) => parts.filter((p) => p.type === 'function_call');

let llm: LlamaCppLlm;
let badCaller: LlamaCppLlm;
beforeAll(async () => {
  llm = await LlamaCppLlm.load(config(await tinyQwenPath()), log);
  badCaller = await LlamaCppLlm.load(config(await tinyQwenPath({ badToolCall: true })), log);
});
afterAll(async () => {
  await llm?.dispose();
  await badCaller?.dispose();
});

describe('function calling on the tiny Qwen2 model', () => {
  it('calls the offered tool with arguments that match its schema, then answers from its output', async () => {
    const conversation = await llm.openConversation();
    expect((conversation as LlamaConversation).chatWrapperName).toBe('QwenChatWrapper');
    const first = await collect(conversation.respond('What is the weather in Paris tomorrow?', { signal: signal(), tools: weather }));
    expect(text(first)).toBe('');
    const [call, ...more] = calls(first);
    expect(more).toEqual([]);
    expect(call).toMatchObject({ type: 'function_call', name: 'get_weather', callId: expect.stringMatching(/^call_\w{24}$/) });
    expect(JSON.parse((call as { arguments: string }).arguments)).toEqual(TINY_QWEN_TOOL_CALL.arguments);
    expect(conversation.lastStats).toMatchObject({ aborted: false, rejectedFunctionCalls: 0 });
    const callTurnInput = conversation.lastStats!.inputTokens;

    conversation.addFunctionCallOutput((call as { callId: string }).callId, JSON.stringify({ forecast: 'sunny', high_c: 24 }));
    const answer = await collect(conversation.respond(null, { signal: signal(), tools: weather }));
    expect(calls(answer)).toEqual([]);
    expect(text(answer)).toBe(TINY_QWEN_TOOL_ANSWER);
    // The KV cache carries over: only the call's result section is new, not the tools prompt.
    expect(conversation.lastStats!.inputTokens).toBeLessThan(callTurnInput / 2);
    const output = JSON.stringify({ forecast: 'sunny', high_c: 24 });
    expect(conversation.history).toEqual([
      { role: 'user', content: 'What is the weather in Paris tomorrow?' },
      { role: 'assistant', content: TINY_QWEN_TOOL_ANSWER, functionCalls: [{ name: 'get_weather', arguments: JSON.stringify(TINY_QWEN_TOOL_CALL.arguments), output }] },
    ]);
    conversation.dispose();
  });

  it('keeps function calls and their outputs when a history is restored (the model still sees the result)', async () => {
    const history = [
      { role: 'user' as const, content: 'Weather in Paris?' },
      { role: 'assistant' as const, content: '', functionCalls: [{ name: 'get_weather', arguments: '{"city":"Paris","days":1}', output: '{"forecast":"sunny"}' }] },
    ];
    const conversation = await llm.openConversation({ history });
    expect(conversation.history).toEqual(history);
    // With a result in its context the tiny model answers instead of calling.
    const parts = await collect(conversation.respond('And then?', { signal: signal(), tools: weather }));
    expect(text(parts)).toBe(TINY_QWEN_TOOL_ANSWER);
    conversation.dispose();
  });

  it('offers nothing with tool_choice "none": no call, the plain answer', async () => {
    const conversation = await llm.openConversation();
    const parts = await collect(conversation.respond('What is the weather in Paris?', { signal: signal(), tools: weather, toolChoice: 'none' }));
    expect(calls(parts)).toEqual([]);
    expect(text(parts)).toBe(TINY_QWEN_REPLY);
    conversation.dispose();
  });

  it('never passes on a call that breaks the schema: generated once more, then answered in words', async () => {
    logged.length = 0;
    const conversation = await badCaller.openConversation();
    const parts = await collect(conversation.respond('What is the weather in Paris?', { signal: signal(), tools: weather }));
    expect(calls(parts)).toEqual([]);
    expect(text(parts)).toBe(TINY_QWEN_REPLY);
    expect(conversation.lastStats!.rejectedFunctionCalls).toBe(2);
    const warnings = logged.filter((l) => l.message.includes('broke its schema'));
    expect(warnings).toHaveLength(2);
    expect(JSON.stringify(warnings[0])).toContain('/days must be <= 7');
    expect(TINY_QWEN_BAD_TOOL_CALL.arguments.days).toBeGreaterThan(7);
    conversation.dispose();
  });

  it('makes the model call with tool_choice "required" where it would have answered', async () => {
    const conversation = await llm.openConversation();
    const [call] = calls(await collect(conversation.respond('Weather in Paris?', { signal: signal(), tools: weather })));
    conversation.addFunctionCallOutput((call as { callId: string }).callId, '{"forecast": "sunny"}');
    // After a result the tiny model answers; required pushes it into a second call.
    const forced = await collect(conversation.respond(null, { signal: signal(), tools: weather, toolChoice: 'required' }));
    expect(calls(forced)).toHaveLength(1);
    expect(JSON.parse((calls(forced)[0] as { arguments: string }).arguments)).toEqual(TINY_QWEN_TOOL_CALL.arguments);
    conversation.dispose();
  });

  it('offers only the named function for a named tool_choice', async () => {
    const tools = await ToolSet.compile([TINY_QWEN_WEATHER_TOOL, { name: 'get_time', description: 'The time now.' }]);
    const conversation = await llm.openConversation();
    // The tiny model's own pick is get_weather; the name grammar allows only get_time.
    const parts = await collect(conversation.respond('What time is it?', { signal: signal(), tools, toolChoice: { name: 'get_time' } }));
    expect(calls(parts)).toEqual([expect.objectContaining({ name: 'get_time', arguments: '{}' })]);
    expect(() => tools.functions({ name: 'book_flight' })).toThrow(/tool_choice names "book_flight", which is not among the tools \(get_weather, get_time\)/);
    conversation.dispose();
  });

  it('moves on when the user speaks instead of returning an output, and refuses outputs for unknown calls', async () => {
    const conversation = await llm.openConversation();
    const [call] = calls(await collect(conversation.respond('Weather in Paris?', { signal: signal(), tools: weather })));
    expect(() => conversation.addFunctionCallOutput('call_nope', '{}')).toThrow(InvalidInputError);
    // The call joins the history with "no output"; the model sees a result section and answers.
    const parts = await collect(conversation.respond('Never mind.', { signal: signal(), tools: weather }));
    expect(text(parts)).toBe(TINY_QWEN_TOOL_ANSWER);
    expect(() => conversation.addFunctionCallOutput((call as { callId: string }).callId, '{}')).toThrow(/no function call "call_\w+" is waiting/);
    conversation.dispose();
  });

  it('stops a call in progress when its signal fires: nothing half-made reaches the caller', async () => {
    const conversation = await llm.openConversation();
    const abort = new AbortController();
    abort.abort();
    const parts = await collect(conversation.respond('Weather in Paris?', { signal: abort.signal, tools: weather }));
    expect(parts).toEqual([]);
    expect(conversation.lastStats!.aborted).toBe(true);
    // The conversation still works afterwards.
    expect(calls(await collect(conversation.respond('Weather in Paris?', { signal: signal(), tools: weather })))).toHaveLength(1);
    conversation.dispose();
  });
});
