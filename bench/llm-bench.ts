/**
 * LLM-side benchmarks (regression checks of our own overhead, not model figures):
 *  - speech normalisation (SpeakableStream) cost per delta on a markdown-laden reply streamed in 4-character deltas
 *  - time to first token and per-token time through our conversation wrapper on the tiny Qwen2 GGUF
 */
import { writeTinyQwen } from '../builder/tiny-models/tiny-qwen.js';
import { LlamaCppLlm } from '../src/llm/llama-cpp-llm.js';
import { Logger } from '../src/log/logger.js';
import { SpeakableStream } from '../src/tts/speakable.js';
import { summarize, type BenchResult } from './stats.js';

const REPLY =
  '**Sure!** The capital of France is Paris, a city of about 2.1 million people. It sits on the Seine, e.g. near Notre-Dame. ' +
  'Visit https://example.com/paris for more; it is lovely in spring — really! 1. Walk. 2. Eat croissants 🥐. Enjoy your trip, my friend.';

export async function benchLlm(): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  const perDelta: number[] = [];
  for (let round = 0; round < 200; round++) {
    const speakable = new SpeakableStream();
    for (let i = 0; i < REPLY.length; i += 4) {
      const started = performance.now();
      speakable.push(REPLY.slice(i, i + 4));
      perDelta.push((performance.now() - started) * 1000);
    }
    speakable.end();
  }
  results.push(summarize('speech normalisation (SpeakableStream) per 4-char delta', 'us', perDelta));

  const log = new Logger({ level: 'ERROR', jsonLines: true, write: () => undefined });
  const path = await writeTinyQwen('.bench/tiny-qwen.gguf');
  const llm = await LlamaCppLlm.load(
    { modelPath: path, gpu: false, contextSize: 2048, maxConversations: 1, threads: 1, defaultMaxTokens: 64, defaultTemperature: 0.7 },
    log,
  );
  const ttft: number[] = [];
  const perToken: number[] = [];
  for (let turn = 0; turn < 30; turn++) {
    const conversation = await llm.openConversation();
    const started = performance.now();
    let tokens = 0;
    for await (const _ of conversation.reply(`Tell me about turn ${turn}.`, { signal: new AbortController().signal })) tokens++;
    const total = performance.now() - started;
    const stats = conversation.lastStats!;
    ttft.push(stats.ttftMs!);
    perToken.push((total - stats.ttftMs!) / Math.max(1, tokens - 1));
    conversation.dispose();
  }
  await llm.dispose();
  results.push(summarize('LLM time to first token (tiny model)', 'ms', ttft));
  results.push(summarize('LLM per token after the first (tiny model)', 'ms', perToken));
  return results;
}
