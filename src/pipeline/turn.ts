/**
 * One user turn of a turn job, end to end: find the speech (VAD), transcribe it (ASR, speculative),
 * answer it (LLM -> chunker -> TTS), and stream the contract's events: vad, transcript, text and
 * audio as they are made, then the turn's metrics.
 */
import { encodeBase64 } from '../audio/base64.js';
import type { Conversation } from '../llm/llm.js';
import { TTS_SAMPLE_RATE } from '../tts/tts.js';
import type { EndpointerOptions } from '../vad/endpointer.js';
import type { Engines } from './engines.js';
import type { TurnEvent, TurnMetrics } from './events.js';
import { listenForTurn } from './listen.js';
import { respond, type ResponseOptions } from './respond.js';

export interface TurnOptions extends Omit<ResponseOptions, 'signal'> {
  vad?: Partial<EndpointerOptions>;
}

export interface TurnSummary {
  audioOutSamples: number;
  llmTokensIn: number;
  llmTokensOut: number;
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
  const heard = await listenForTurn(endpointer, engines.asr, samples, signal);
  const metrics: TurnMetrics = {
    vad_ms: round(heard?.vadMs ?? endpointer.vadMs),
    endpoint_ms: 0,
    asr_ms: 0,
    llm_ttft_ms: 0,
    llm_first_clause_ms: 0,
    tts_ttfb_ms: 0,
    first_audio_ms: 0,
    overhead_ms: 0,
    audio_out_ms: 0,
    rtf: 0,
    asr_critical_ms: 0,
    asr_speculative: false,
    llm_tokens_in: 0,
    llm_tokens_out: 0,
    interrupted: false,
  };
  for (const segment of heard?.segments ?? []) yield { type: 'vad', turn, start_ms: round(segment.startMs), end_ms: round(segment.endMs) };
  yield { type: 'transcript', turn, text: heard?.transcript ?? '' };
  if (!heard || !heard.transcript) {
    // No speech (or nothing recognisable): no answer, not an error.
    yield { type: 'metrics', turn, ...metrics };
    return { audioOutSamples: 0, llmTokensIn: 0, llmTokensOut: 0 };
  }
  Object.assign(metrics, {
    endpoint_ms: round(heard.endpointMs),
    asr_ms: round(heard.asrMs),
    asr_critical_ms: round(heard.asrCriticalMs),
    asr_speculative: heard.asrSpeculative,
  });

  const response = respond(conversation, engines.tts, heard.transcript, { ...options, signal });
  let seq = 0;
  let firstOutAt: number | null = null;
  for await (const item of response.items) {
    if (item.kind === 'text') {
      yield { type: 'text', turn, delta: item.delta };
      continue;
    }
    const bytes = new Uint8Array(item.pcm.buffer, item.pcm.byteOffset, item.pcm.byteLength);
    firstOutAt ??= performance.now();
    yield { type: 'audio', turn, seq: seq++, sample_rate: TTS_SAMPLE_RATE, format: 'pcm16', data: encodeBase64(bytes) };
  }

  const t = response.timings;
  const firstPiece = t.pieces[0]?.stats;
  const llmFirstClause = t.firstPieceAt === null ? 0 : t.firstPieceAt - t.requestedAt;
  const ttsTtfb = firstPiece?.ttfbMs ?? 0;
  const firstAudio = firstOutAt === null ? 0 : heard.endpointMs + (firstOutAt - heard.closedAt);
  const audioOutMs = (t.audioSamples / TTS_SAMPLE_RATE) * 1000;
  Object.assign(metrics, {
    llm_ttft_ms: round(t.firstTokenAt === null ? 0 : t.firstTokenAt - t.requestedAt),
    llm_first_clause_ms: round(llmFirstClause),
    tts_ttfb_ms: round(ttsTtfb),
    first_audio_ms: round(firstAudio),
    overhead_ms: round(firstOutAt === null ? 0 : firstAudio - heard.endpointMs - heard.asrCriticalMs - llmFirstClause - ttsTtfb),
    audio_out_ms: round(audioOutMs),
    rtf: audioOutMs > 0 && t.firstAudioAt !== null && t.lastAudioAt !== null ? round((t.lastAudioAt - t.firstAudioAt + ttsTtfb) / audioOutMs) : 0,
    llm_tokens_in: t.llm?.inputTokens ?? 0,
    llm_tokens_out: t.llm?.outputTokens ?? 0,
    interrupted: signal.aborted || (t.llm?.aborted ?? false),
  });
  yield { type: 'metrics', turn, ...metrics };
  return { audioOutSamples: t.audioSamples, llmTokensIn: metrics.llm_tokens_in, llmTokensOut: metrics.llm_tokens_out };
}
