/**
 * The LLM engine for real: node-llama-cpp loads the tiny generated Qwen2 GGUF and streams from it.
 * The tiny model always answers TINY_QWEN_REPLY (its "endless" twin never stops), so streaming,
 * abort, token limits, history, KV reuse and context trimming can be checked exactly.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { getLlama } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_QWEN_REPLY } from '../../builder/tiny-models/tiny-qwen.js';
import { ConfigError } from '../../src/errors.js';
import type { LlamaConversation } from '../../src/llm/llama-conversation.js';
import { LlamaCppLlm, type LlamaCppConfig } from '../../src/llm/llama-cpp-llm.js';
import { Logger } from '../../src/log/logger.js';
import { scratchDir, tinyQwenPath } from '../helpers/tiny-models.js';
import { collect } from '../helpers/collect.js';

const log = new Logger({ level: 'ERROR', jsonLines: true, write: () => undefined });
const config = (modelPath: string, overrides: Partial<LlamaCppConfig> = {}): LlamaCppConfig => ({
  modelPath,
  gpu: false,
  contextSize: 512,
  maxConversations: 2,
  threads: 1,
  defaultMaxTokens: 128,
  defaultTemperature: 0.7,
  ...overrides,
});

/** Whether node-llama-cpp finds a CUDA GPU here. */
async function cudaAvailable(): Promise<boolean> {
  try {
    return (await getLlama({ gpu: 'cuda', build: 'never' })).gpu === 'cuda';
  } catch {
    return false;
  }
}

const cudaPresent = await cudaAvailable();

let llm: LlamaCppLlm;
let endless: LlamaCppLlm;
beforeAll(async () => {
  llm = await LlamaCppLlm.load(config(await tinyQwenPath()), log);
  endless = await LlamaCppLlm.load(config(await tinyQwenPath(true), { maxConversations: 1 }), log);
});
afterAll(async () => {
  await llm?.dispose();
  await endless?.dispose();
});

describe('LlamaCppLlm on the tiny Qwen2 model', () => {
  it('streams the reply token by token and uses the Qwen chat wrapper', async () => {
    const conversation = await llm.openConversation();
    const deltas = await collect(conversation.reply('Hi, who are you?', { signal: new AbortController().signal }));
    expect(deltas.join('')).toBe(TINY_QWEN_REPLY);
    expect(deltas.length).toBeGreaterThan(10);
    expect((conversation as LlamaConversation).chatWrapperName).toBe('QwenChatWrapper');
    expect(conversation.lastStats).toMatchObject({ outputTokens: 17, aborted: false, droppedMessages: 0 });
    expect(conversation.lastStats!.ttftMs).toBeGreaterThan(0);
    conversation.dispose();
  });

  it('keeps history across turns and evaluates only the new tokens on the second turn', async () => {
    const conversation = await llm.openConversation({ systemPrompt: 'Be brief.' });
    await collect(conversation.reply('What is the capital of France?', { signal: new AbortController().signal }));
    const first = conversation.lastStats!;
    await collect(conversation.reply('And of Spain?', { signal: new AbortController().signal }));
    const second = conversation.lastStats!;
    expect(conversation.history).toEqual([
      { role: 'user', content: 'What is the capital of France?' },
      { role: 'assistant', content: TINY_QWEN_REPLY },
      { role: 'user', content: 'And of Spain?' },
      { role: 'assistant', content: TINY_QWEN_REPLY },
    ]);
    // A fresh conversation given the same history must evaluate all of it.
    const fresh = await llm.openConversation({ systemPrompt: 'Be brief.', history: conversation.history.slice(0, 2) });
    await collect(fresh.reply('And of Spain?', { signal: new AbortController().signal }));
    expect(second.inputTokens).toBeLessThan(fresh.lastStats!.inputTokens / 2);
    expect(second.inputTokens).toBeLessThan(first.inputTokens);
    conversation.dispose();
    fresh.dispose();
  });

  it('rolls back a discarded reply: no trace in the history, and the next turn reuses the cached prefix', async () => {
    const conversation = await llm.openConversation({ systemPrompt: 'Be brief.' });
    await collect(conversation.reply('What is the capital of France?', { signal: new AbortController().signal }));
    const kept = conversation.history.length;
    // A preemptive reply, cut short and thrown away.
    const abort = new AbortController();
    const reply = conversation.reply('And of', { signal: abort.signal });
    for await (const _delta of reply) {
      abort.abort();
    }
    expect(conversation.history.length).toBe(kept + 2);
    conversation.restore(conversation.history.slice(0, kept));
    expect(conversation.history.length).toBe(kept);
    await collect(conversation.reply('And of Spain?', { signal: new AbortController().signal }));
    expect(conversation.history).toEqual([
      { role: 'user', content: 'What is the capital of France?' },
      { role: 'assistant', content: TINY_QWEN_REPLY },
      { role: 'user', content: 'And of Spain?' },
      { role: 'assistant', content: TINY_QWEN_REPLY },
    ]);
    // Only the tokens after the kept history are evaluated again (not the system prompt and first turn).
    expect(conversation.lastStats!.inputTokens).toBeLessThan(20);
    conversation.dispose();
  });

  it('stops within one token when its signal fires mid-stream', async () => {
    const conversation = await endless.openConversation();
    const abort = new AbortController();
    const deltas: string[] = [];
    for await (const delta of conversation.reply('Talk forever.', { signal: abort.signal, maxTokens: 400 })) {
      deltas.push(delta);
      if (deltas.length === 5) abort.abort();
    }
    expect(conversation.lastStats!.aborted).toBe(true);
    expect(deltas.length).toBeLessThanOrEqual(6);
    expect(conversation.lastStats!.outputTokens).toBeLessThanOrEqual(6);
    conversation.dispose();
  });

  it('an abort before the first token (during prefill) ends the reply quietly, never as an error', async () => {
    const conversation = await endless.openConversation();
    const abort = new AbortController();
    const stream = conversation.reply('Talk forever.', { signal: abort.signal, maxTokens: 400 });
    // Tokens arrive asynchronously: aborting now lands in the prefill, where node-llama-cpp throws.
    abort.abort();
    expect(await collect(stream)).toEqual([]);
    expect(conversation.lastStats).toMatchObject({ outputTokens: 0, aborted: true });
    // What the user said stays in the history; nothing was said back.
    expect(conversation.history).toEqual([
      { role: 'user', content: 'Talk forever.' },
      { role: 'assistant', content: '' },
    ]);
    // The conversation goes on.
    expect(await collect(conversation.reply('Go on.', { signal: new AbortController().signal, maxTokens: 3 }))).toHaveLength(3);
    conversation.dispose();
  });

  it('a signal that fired before the call stops the reply at once', async () => {
    const conversation = await endless.openConversation();
    const deltas = await collect(conversation.reply('Talk forever.', { signal: AbortSignal.abort(), maxTokens: 400 }));
    expect(deltas).toEqual([]);
    expect(conversation.lastStats).toMatchObject({ outputTokens: 0, aborted: true });
    conversation.dispose();
  });

  it('stops at the response token limit', async () => {
    const conversation = await endless.openConversation();
    await collect(conversation.reply('Talk forever.', { signal: new AbortController().signal, maxTokens: 12 }));
    expect(conversation.lastStats!.outputTokens).toBe(12);
    conversation.dispose();
  });

  it('drops the oldest turns when the context is full, keeping the system prompt', async () => {
    const small = await LlamaCppLlm.load(config(await tinyQwenPath(), { contextSize: 256, maxConversations: 1, defaultMaxTokens: 64 }), log);
    const conversation = await small.openConversation({ systemPrompt: 'Be brief.' });
    let dropped = 0;
    for (let turn = 0; turn < 8; turn++) {
      const text = (await collect(conversation.reply(`Question number ${turn}, tell me something.`, { signal: new AbortController().signal }))).join('');
      expect(text).toBe(TINY_QWEN_REPLY);
      dropped += conversation.lastStats!.droppedMessages;
    }
    expect(dropped).toBeGreaterThan(0);
    expect(conversation.history[0]!.content).not.toBe('Question number 0, tell me something.');
    expect(conversation.history.at(-2)!.content).toBe('Question number 7, tell me something.');
    conversation.dispose();
    await small.dispose();
  });

  // About a machine without a CUDA GPU; on one it does not apply.
  it.skipIf(cudaPresent)('fails fast with a clear error when CUDA is required and there is no GPU', async () => {
    await expect(LlamaCppLlm.load(config(await tinyQwenPath(), { gpu: 'cuda' }), log)).rejects.toThrow(/node-llama-cpp could not load a CUDA binary|CUDA was required/);
  });

  it('refuses a missing or corrupt model file with a clear error naming it', async () => {
    const dir = await scratchDir();
    await expect(LlamaCppLlm.load(config(join(dir, 'nope.gguf')), log)).rejects.toThrow(ConfigError);
    const corrupt = join(dir, 'corrupt.gguf');
    await writeFile(corrupt, Buffer.from('GGUF this is not a model'));
    await expect(LlamaCppLlm.load(config(corrupt), log)).rejects.toThrow(/LLM model file is corrupt \(not a GGUF v2\/v3 file\): .*corrupt\.gguf/);
    const truncated = join(dir, 'truncated.gguf');
    await writeFile(truncated, (await readFile(await tinyQwenPath())).subarray(0, 40_000));
    await expect(LlamaCppLlm.load(config(truncated), log)).rejects.toThrow(/truncated\.gguf could not be loaded/);
  });
});
