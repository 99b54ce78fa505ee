/**
 * The first inference of each engine after load pays one-off costs (CUDA kernels and cuDNN's
 * algorithm search, llama.cpp's first evaluation, the TTS engine's first stream). One short decode,
 * prompt and utterance per engine at start, before the first job is taken, so the first user's turn
 * is as fast as the hundredth. Each engine's warm-up time is logged.
 */
import { errorMessage, type Logger } from '../log/logger.js';
import { speakText } from '../tts/tts.js';
import type { Engines } from './engines.js';

export interface WarmUpReport {
  vadMs: number;
  asrMs: number;
  llmMs: number;
  ttsMs: number;
  totalMs: number;
}

export async function warmUpEngines(engines: Engines, log: Logger, signal: AbortSignal = new AbortController().signal): Promise<WarmUpReport> {
  const started = performance.now();
  const timed = async (name: string, run: () => Promise<unknown>): Promise<number> => {
    const t0 = performance.now();
    try {
      await run();
    } catch (error) {
      throw new Error(`${name} failed its warm-up: ${errorMessage(error)}`, { cause: error });
    }
    return Math.round(performance.now() - t0);
  };
  // One second of faint noise: a real decode (silence can be skipped by some engines).
  const second = Float32Array.from({ length: 16_000 }, (_, i) => 0.001 * Math.sin(i * 0.37));
  // One after another: on one GPU, concurrent warm-ups would time each other.
  const vadMs = await timed('vad', async () => {
    const stream = engines.vad.openStream();
    await stream.push(second);
    // The turn model's first inference is several times slower than the next ones.
    await engines.vad.turnModel?.predict(second);
  });
  const asrMs = await timed('asr', () => engines.asr.transcribe(second, { signal }));
  const llmMs = await timed('llm', async () => {
    const conversation = await engines.llm.openConversation();
    try {
      for await (const _delta of conversation.reply('Hello.', { signal, maxTokens: 4 })) {
        // Reading the stream is the warm-up.
      }
    } finally {
      conversation.dispose();
    }
  });
  const ttsMs = await timed('tts', async () => {
    for await (const _chunk of speakText(engines.tts, 'Hello there.', { signal })) {
      // As above.
    }
  });
  const report = { vadMs, asrMs, llmMs, ttsMs, totalMs: Math.round(performance.now() - started) };
  log.info('engines warmed up', { vad_ms: vadMs, asr_ms: asrMs, llm_ms: llmMs, tts_ms: ttsMs, total_ms: report.totalMs });
  return report;
}
