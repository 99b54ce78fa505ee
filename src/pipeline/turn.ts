/**
 * One user turn of a turn job, end to end: find the speech (VAD), transcribe it (ASR, speculative),
 * answer it (LLM deltas -> one TTS stream), and stream the contract's events: vad, transcript, text and
 * audio as they are made, then the turn's metrics.
 */
import { encodeBase64 } from '../audio/base64.js';
import type { Conversation } from '../llm/llm.js';
import { TTS_SAMPLE_RATE } from '../tts/tts.js';
import type { EndpointerOptions } from '../vad/endpointer.js';
import type { Engines } from './engines.js';
import type { TurnEvent } from './events.js';
import { turnMetrics } from './metrics.js';
import { listenForTurn } from './listen.js';
import { PreemptiveResponder, type PreemptionMode } from './preemptive.js';
import type { ResponseOptions } from './respond.js';

export interface TurnOptions extends Omit<ResponseOptions, 'signal'> {
  vad?: Partial<EndpointerOptions>;
  /** Start the answer on the speculative transcript during the endpoint wait (default full). */
  preemption?: PreemptionMode;
}

export interface TurnSummary {
  audioOutSamples: number;
  llmTokensIn: number;
  llmTokensOut: number;
  llmTokensWasted: number;
}

const round = (ms: number) => Math.round(ms * 100) / 100;

export async function* runTurn(
  engines: Engines,
  conversation: Conversation,
  turn: number,
  samples: Float32Array,
  options: TurnOptions,
  signal: AbortSignal,
): AsyncGenerator<TurnEvent, TurnSummary> {
  const endpointer = engines.vad.openStream(options.vad);
  const { vad: _vad, preemption: mode = 'full', ...responseOptions } = options;
  const preemption = new PreemptiveResponder(conversation, engines.tts, mode, () => responseOptions, signal, () => engines.scheduler?.mayPreempt() ?? true);
  // The audio is all there, so a segment's endpoint closes at once: the answer starts when it does, on
  // the speculative transcript of exactly that segment (not at every brief dip inside the speech).
  let speculation: { text: string; endSample: number } | null = null;
  const heard = await listenForTurn(endpointer, engines.asr, samples, signal, {
    onSpeculation: (latest) => (speculation = latest),
    onSpeechEnd: (endSample) => {
      if (speculation?.endSample === endSample) preemption.start(speculation.text);
    },
    // More speech after it: the turn will read differently.
    onSpeech: () => preemption.discard(),
  });
  for (const segment of heard?.segments ?? []) yield { type: 'vad', turn, start_ms: round(segment.startMs), end_ms: round(segment.endMs) };
  yield { type: 'transcript', turn, text: heard?.transcript ?? '' };
  if (!heard || !heard.transcript) {
    // No speech (or nothing recognisable): no answer, not an error.
    const wastedTokens = await preemption.drop();
    yield { type: 'metrics', turn, ...turnMetrics(heard, null, null, false, endpointer.vadMs, { preemptive: wastedTokens > 0 ? 'discarded' : false, wastedTokens }) };
    return { audioOutSamples: 0, llmTokensIn: 0, llmTokensOut: 0, llmTokensWasted: wastedTokens };
  }

  const { response, preemptive, wastedTokens } = await preemption.take(heard.transcript, signal);
  let seq = 0;
  let firstOutAt: number | null = null;
  for await (const item of response.items) {
    if (item.kind === 'text') {
      yield { type: 'text', turn, delta: item.delta };
      continue;
    }
    if (item.kind === 'function_call') continue; // turn jobs offer no tools
    const bytes = new Uint8Array(item.pcm.buffer, item.pcm.byteOffset, item.pcm.byteLength);
    firstOutAt ??= performance.now();
    yield { type: 'audio', turn, seq: seq++, sample_rate: TTS_SAMPLE_RATE, format: 'pcm16', data: encodeBase64(bytes) };
  }
  const metrics = turnMetrics(heard, response.timings, firstOutAt, signal.aborted, 0, { preemptive, wastedTokens });
  yield { type: 'metrics', turn, ...metrics };
  return { audioOutSamples: response.timings.audioSamples, llmTokensIn: metrics.llm_tokens_in, llmTokensOut: metrics.llm_tokens_out, llmTokensWasted: wastedTokens };
}
