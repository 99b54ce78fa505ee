/**
 * Tool calling over the OpenAI Realtime API with the real @openai/agents-realtime client: an agent
 * with a get_weather tool asks by voice, the SDK runs the tool and sends its output back, and the
 * spoken answer follows. The test profile's tiny Qwen calls get_weather whenever functions are
 * offered (its badToolCall twin with arguments that break the schema).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { RealtimeAgent, RealtimeSession, tool } from '@openai/agents-realtime';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_QWEN_REPLY, TINY_QWEN_TOOL_ANSWER, TINY_QWEN_TOOL_CALL, tinyQwenGguf } from '../../builder/tiny-models/tiny-qwen.js';
import { createS2sHandler, type S2sHandler } from '../../handler/s2s-handler.js';
import { Logger } from '../../src/log/logger.js';
import { makeUtterance, type Utterance } from '../fixtures/speech.js';
import { messages, speakTo, transcriptOf, waitUntil } from '../helpers/realtime-client.js';
import { testProfileEnv } from '../helpers/test-profile.js';

const TOKEN = 'realtime-tools-token-0123456789';
const quiet = new Logger({ level: 'ERROR', jsonLines: true, write: () => undefined });
let question: Utterance;

/** A worker on the test profile (optionally with the badToolCall model) serving /v1/realtime. */
async function startWorker(badToolCall = false): Promise<{ handler: S2sHandler; server: Server; url: string }> {
  const env = await testProfileEnv({ S2S_SESSION_IDLE_MS: '8000' });
  if (badToolCall) await writeFile(`${env['S2S_MODELS_DIR']}/test/tiny-qwen.gguf`, tinyQwenGguf({ badToolCall: true }));
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
beforeAll(async () => {
  [good, bad] = await Promise.all([startWorker(), startWorker(true)]);
  question = await makeUtterance([{ silenceMs: 300 }, { say: 'What is the weather in Paris tomorrow?' }, { silenceMs: 800 }], 24_000);
}, 120_000);
afterAll(async () => {
  await Promise.all([stopWorker(good), stopWorker(bad)]);
});

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
});
