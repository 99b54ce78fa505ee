/**
 * Tool calling over the OpenAI Realtime API with the real @openai/agents-realtime client: an agent
 * with a get_weather tool asks by voice, the SDK runs the tool and sends its output back, and the
 * spoken answer follows. The test profile's tiny Qwen calls get_weather whenever functions are
 * offered (its badToolCall twin with arguments that break the schema; its textBeforeCall twin says
 * TINY_QWEN_CALL_PREAMBLE first). An answer that is only a call has no message item, as on
 * OpenAI's server: response.done's output is the call alone.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { RealtimeAgent, RealtimeSession, tool } from '@openai/agents-realtime';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  TINY_QWEN_CALL_PREAMBLE,
  TINY_QWEN_REPLY,
  TINY_QWEN_TOOL_ANSWER,
  TINY_QWEN_TOOL_CALL,
  TINY_QWEN_WEATHER_TOOL,
  tinyQwenGguf,
  type TinyQwenOptions,
} from '../../builder/tiny-models/tiny-qwen.js';
import { createS2sHandler, type S2sHandler } from '../../handler/s2s-handler.js';
import { Logger } from '../../src/log/logger.js';
import { makeUtterance, type Utterance } from '../fixtures/speech.js';
import { messages, RealtimeTestClient, speakTo, transcriptOf, waitUntil, type RealtimeEvent } from '../helpers/realtime-client.js';
import { testProfileEnv } from '../helpers/test-profile.js';

const TOKEN = 'realtime-tools-token-0123456789';
const quiet = new Logger({ level: 'ERROR', jsonLines: true, write: () => undefined });
let question: Utterance;

/** A worker on the test profile (optionally with a twin of its tiny Qwen) serving /v1/realtime. */
async function startWorker(variant?: TinyQwenOptions): Promise<{ handler: S2sHandler; server: Server; url: string }> {
  const env = await testProfileEnv({ S2S_SESSION_IDLE_MS: '8000' });
  if (variant) await writeFile(`${env['S2S_MODELS_DIR']}/test/tiny-qwen.gguf`, tinyQwenGguf(variant));
  const handler = await createS2sHandler({ log: quiet, env });
  const server = createServer((_req, res) => res.writeHead(404).end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  handler.serveSessionsOn(server, TOKEN);
  return { handler, server, url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/v1/realtime` };
}

async function stopWorker(worker: { handler: S2sHandler; server: Server } | undefined): Promise<void> {
  await worker?.handler.dispose();
  worker?.server.closeAllConnections();
  await new Promise((resolve) => worker?.server.close(resolve));
}

/** The agent the README shows (Realtime API, Tool calling), word for word: one tool, its arguments a zod schema. */
function weatherAgent() {
  const getWeather = tool({
    name: 'get_weather',
    description: 'The weather forecast for a city.',
    parameters: z.object({
      city: z.string().describe('The city name'),
      days: z.number().int().min(1).max(7).describe('How many days ahead, 1 to 7'),
    }),
    execute: async ({ city }) => ({ city, forecast: 'sunny', high_c: 24 }),
  });
  const agent = new RealtimeAgent({ name: 'Weather', instructions: 'Answer weather questions with get_weather.', tools: [getWeather] });
  return agent;
}

/** The arguments of each tool call the SDK started, and what each run of the tool returned. */
function recordTools(session: RealtimeSession): { calls: unknown[]; results: unknown[] } {
  const calls: unknown[] = [];
  const results: unknown[] = [];
  session.on('agent_tool_start', (_context, _agent, _tool, { toolCall }) => calls.push(JSON.parse((toolCall as { arguments: string }).arguments)));
  session.on('agent_tool_end', (_context, _agent, _tool, result) => results.push(JSON.parse(result)));
  return { calls, results };
}

let good: Awaited<ReturnType<typeof startWorker>>;
let bad: Awaited<ReturnType<typeof startWorker>>;
let talker: Awaited<ReturnType<typeof startWorker>>;
beforeAll(async () => {
  [good, bad, talker] = await Promise.all([startWorker(), startWorker({ badToolCall: true }), startWorker({ textBeforeCall: true })]);
  question = await makeUtterance([{ silenceMs: 300 }, { say: 'What is the weather in Paris tomorrow?' }, { silenceMs: 800 }], 24_000);
}, 120_000);
afterAll(async () => {
  await Promise.all([stopWorker(good), stopWorker(bad), stopWorker(talker)]);
});

type OutputItem = { id: string; type: string; role?: string; status: string; content?: { transcript?: string }[] };

/**
 * A bare client asks the weather by text, with get_weather offered and manual turns (so nothing
 * but its own response.create starts an answer); resolves with every event up to response.done.
 */
async function askWeather(url: string): Promise<{ client: RealtimeTestClient; events: RealtimeEvent[]; done: { status: string; output: OutputItem[] } }> {
  const client = await RealtimeTestClient.connect(url, { token: TOKEN });
  client.send({ type: 'session.update', session: { type: 'realtime', tools: [{ type: 'function', ...TINY_QWEN_WEATHER_TOOL }], audio: { input: { turn_detection: null } } } });
  client.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'What is the weather in Paris tomorrow?' }] } });
  client.send({ type: 'response.create' });
  const done = (await client.waitFor('response.done', 40_000))['response'] as { status: string; output: OutputItem[] };
  return { client, events: [...client.events], done };
}

const addedOutputs = (events: RealtimeEvent[]) => events.filter((e) => e.type === 'response.output_item.added').map((e) => [e['output_index'], (e['item'] as OutputItem).type]);
const assistantMessagesAdded = (events: RealtimeEvent[]) =>
  events.filter((e) => e.type === 'conversation.item.added' && (e['item'] as OutputItem).type === 'message' && (e['item'] as OutputItem).role === 'assistant');

describe('Realtime API tool calling with @openai/agents-realtime', () => {
  it('a spoken question calls get_weather with valid arguments; its output goes back and the spoken answer follows', async () => {
    const session = new RealtimeSession(weatherAgent(), { transport: 'websocket', model: 'gpt-realtime' });
    const { calls, results } = recordTools(session);
    const errors: unknown[] = [];
    session.on('error', (error) => errors.push(error));
    let audioBytes = 0;
    session.on('audio', (event) => (audioBytes += event.data.byteLength));
    await session.connect({ apiKey: TOKEN, url: good.url });
    await speakTo(session, question);
    await waitUntil(
      () => messages(session.history).find((i) => i.role === 'assistant' && transcriptOf(i) === TINY_QWEN_TOOL_ANSWER && i.status === 'completed'),
      40_000,
      'the spoken answer after the tool',
    );
    expect(calls).toEqual([TINY_QWEN_TOOL_CALL.arguments]);
    expect(results).toEqual([{ city: 'Paris', forecast: 'sunny', high_c: 24 }]);
    const call = session.history.find((i) => i.type === 'function_call');
    expect(call).toMatchObject({ type: 'function_call', name: 'get_weather', arguments: JSON.stringify(TINY_QWEN_TOOL_CALL.arguments), status: 'completed' });
    expect(audioBytes).toBeGreaterThan(24_000 * 2);
    expect(errors).toEqual([]);
    session.close();
  }, 90_000);

  it('tool_choice "none": no call, the plain spoken answer', async () => {
    const session = new RealtimeSession(weatherAgent(), { transport: 'websocket', model: 'gpt-realtime', config: { toolChoice: 'none' } });
    const { calls } = recordTools(session);
    let ended = false;
    session.on('agent_end', () => (ended = true));
    await session.connect({ apiKey: TOKEN, url: good.url });
    await speakTo(session, question);
    await waitUntil(() => ended, 40_000, 'agent_end');
    await waitUntil(() => messages(session.history).find((i) => i.role === 'assistant' && transcriptOf(i) === TINY_QWEN_REPLY), 10_000, 'the answer');
    expect(calls).toEqual([]);
    expect(session.history.some((i) => i.type === 'function_call')).toBe(false);
    session.close();
  }, 90_000);

  it('a call whose arguments break the schema never reaches the client: the model answers in words', async () => {
    const session = new RealtimeSession(weatherAgent(), { transport: 'websocket', model: 'gpt-realtime' });
    const { calls } = recordTools(session);
    const seen: string[] = [];
    session.transport.on('*', (event: { type: string }) => seen.push(event.type));
    let ended = false;
    session.on('agent_end', () => (ended = true));
    await session.connect({ apiKey: TOKEN, url: bad.url });
    await speakTo(session, question);
    await waitUntil(() => ended, 40_000, 'agent_end');
    await waitUntil(() => messages(session.history).find((i) => i.role === 'assistant' && transcriptOf(i) === TINY_QWEN_REPLY), 10_000, 'the answer in words');
    expect(calls).toEqual([]);
    expect(seen).toContain('response.done');
    expect(seen.filter((t) => t.startsWith('response.function_call_arguments'))).toEqual([]);
    expect(session.history.some((i) => i.type === 'function_call')).toBe(false);
    session.close();
  }, 90_000);

  it('an answer that is only a call has no message item: the client sees the function_call alone, at output_index 0', async () => {
    const { client, events, done } = await askWeather(good.url);
    expect(done.status).toBe('completed');
    expect(addedOutputs(events)).toEqual([[0, 'function_call']]);
    expect(done.output.map((i) => i.type)).toEqual(['function_call']);
    expect(assistantMessagesAdded(events)).toEqual([]);
    expect(events.some((e) => e.type === 'response.content_part.added')).toBe(false);
    expect(events.some((e) => e.type.startsWith('response.output_audio'))).toBe(false);
    // The conversation holds the user's message and the call, nothing in between.
    const call = done.output[0]!;
    client.send({ type: 'conversation.item.retrieve', item_id: call.id });
    expect((await client.waitFor('conversation.item.retrieved'))['item']).toMatchObject({ id: call.id, type: 'function_call', status: 'completed' });
    const callAdded = events.find((e) => e.type === 'conversation.item.added' && (e['item'] as OutputItem).id === call.id)!;
    const userAdded = events.find((e) => e.type === 'conversation.item.added' && (e['item'] as OutputItem).role === 'user')!;
    expect(callAdded['previous_item_id']).toBe((userAdded['item'] as OutputItem).id);
    client.ws.close();
  }, 60_000);

  it('text said before a call: the message is output_index 0, the call 1, both in response.done', async () => {
    const { client, events, done } = await askWeather(talker.url);
    expect(done.status).toBe('completed');
    expect(addedOutputs(events)).toEqual([
      [0, 'message'],
      [1, 'function_call'],
    ]);
    expect(done.output.map((i) => i.type)).toEqual(['message', 'function_call']);
    expect(done.output[0]!.content![0]!.transcript).toBe(TINY_QWEN_CALL_PREAMBLE);
    // The message is announced empty; its words come as deltas that add up to the transcript.
    const announced = events.find((e) => e.type === 'response.output_item.added' && e['output_index'] === 0)!['item'] as OutputItem;
    expect(announced).toMatchObject({ type: 'message', status: 'in_progress', content: [{ transcript: '' }] });
    const deltas = events.filter((e) => e.type === 'response.output_audio_transcript.delta').map((e) => e['delta']);
    expect(deltas.join('')).toBe(TINY_QWEN_CALL_PREAMBLE);
    // The message's events all name its index; the preamble was spoken before the call.
    const messageEvents = events.filter((e) => e['item_id'] === done.output[0]!.id && e['output_index'] !== undefined);
    expect(new Set(messageEvents.map((e) => e['output_index']))).toEqual(new Set([0]));
    expect(messageEvents.some((e) => e.type === 'response.output_audio.delta')).toBe(true);
    const types = events.map((e) => e.type);
    expect(types.indexOf('response.output_audio_transcript.delta')).toBeLessThan(types.indexOf('response.function_call_arguments.done'));
    client.ws.close();
  }, 60_000);

  it('agents-realtime: a call-only answer leaves no empty assistant message in the history', async () => {
    const session = new RealtimeSession(weatherAgent(), { transport: 'websocket', model: 'gpt-realtime' });
    const { results } = recordTools(session);
    const errors: unknown[] = [];
    session.on('error', (error) => errors.push(error));
    await session.connect({ apiKey: TOKEN, url: good.url });
    session.sendMessage('What is the weather in Paris tomorrow?');
    await waitUntil(
      () => messages(session.history).find((i) => i.role === 'assistant' && transcriptOf(i) === TINY_QWEN_TOOL_ANSWER && i.status === 'completed'),
      40_000,
      'the spoken answer after the tool',
    );
    expect(results).toEqual([{ city: 'Paris', forecast: 'sunny', high_c: 24 }]);
    // user, the call, its output, the answer: no assistant message before the call.
    const shape = session.history.map((i) => (i.type === 'message' ? `${i.role}:${transcriptOf(i)}` : i.type));
    expect(shape).toEqual(['user:What is the weather in Paris tomorrow?', 'function_call', `assistant:${TINY_QWEN_TOOL_ANSWER}`]);
    expect(errors).toEqual([]);
    session.close();
  }, 90_000);
});
