/**
 * A turn's metrics (DESIGN.md "Metrics") from the marks its stages left, computed in one place for
 * turn jobs and live sessions.
 *
 * Turn jobs: first_audio_ms = the endpoint silence (audio time) plus the wall time from the turn
 * closing to its first audio chunk leaving. Live sessions (heard.speechEndAt known): first_audio_ms
 * = from when the last speech sample was captured at the client (estimated from its frame's arrival)
 * to the first answer audio leaving, and endpoint_ms = from that capture to the turn closing, so the
 * client's frame wait shows in both. overhead_ms is what remains after the endpoint and the model
 * time on the critical path (for a preemptive answer: the model time still left when the turn closed);
 * waiting for a shared engine counts as model time there, and is reported apart in the *_wait_ms figures.
 *
 * With text streamed into the TTS, llm_first_clause_ms is the LLM's time to the first text handed to
 * the TTS stream (its first whole word after normalisation), and tts_ttfb_ms the TTS stream's time
 * from that first text to its first audio chunk (see TtsStreamStats.ttfbMs).
 */
import { TTS_SAMPLE_RATE } from '../tts/tts.js';
import type { TurnMetrics } from './events.js';
import type { HeardTurn } from './listen.js';
import type { ResponseTimings } from './respond.js';

const round = (ms: number) => Math.round(ms * 100) / 100;

export function turnMetrics(
  heard: HeardTurn | null,
  response: ResponseTimings | null,
  firstOutAt: number | null,
  interrupted: boolean,
  vadMsIfNoTurn = 0,
  preemption: { preemptive: TurnMetrics['preemptive']; wastedTokens: number } = { preemptive: false, wastedTokens: 0 },
): TurnMetrics {
  const endpointMs = heard ? (heard.speechEndAt !== undefined ? heard.closedAt - heard.speechEndAt : heard.endpointMs) : 0;
  const metrics: TurnMetrics = {
    vad_ms: round(heard?.vadMs ?? vadMsIfNoTurn),
    endpoint_ms: round(endpointMs),
    endpoint_decided_by: heard?.turn?.decidedBy ?? 'silence',
    turn_probability: heard?.turn?.probability == null ? null : Math.round(heard.turn.probability * 10_000) / 10_000,
    turn_verdict: heard?.turn?.verdict ?? null,
    turn_model_ms: round(heard?.turn?.modelMs ?? 0),
    asr_ms: round(heard?.asrMs ?? 0),
    llm_ttft_ms: 0,
    llm_first_clause_ms: 0,
    tts_ttfb_ms: 0,
    first_audio_ms: 0,
    overhead_ms: 0,
    audio_out_ms: 0,
    rtf: 0,
    asr_critical_ms: round(heard?.asrCriticalMs ?? 0),
    asr_speculative: heard?.asrSpeculative ?? false,
    llm_tokens_in: 0,
    llm_tokens_out: 0,
    interrupted,
    preemptive: preemption.preemptive,
    llm_tokens_wasted: preemption.wastedTokens,
    asr_wait_ms: round(heard?.asrWaitMs ?? 0),
    llm_wait_ms: 0,
    tts_wait_ms: 0,
  };
  if (!heard || !response) return metrics;
  const t = response;
  const llmFirstClause = t.firstTextAt === null ? 0 : t.firstTextAt - t.requestedAt;
  const ttsTtfb = t.tts?.ttfbMs ?? 0;
  const ttsWait = t.tts?.waitMs ?? 0;
  const firstAudio = firstOutAt === null ? 0 : endpointMs + (firstOutAt - heard.closedAt);
  // Model time on the critical path after the turn closed.
  const modelCritical =
    preemption.preemptive === true
      ? Math.max(0, (t.firstAudioAt ?? heard.closedAt) - heard.closedAt)
      : heard.asrCriticalMs + llmFirstClause + ttsWait + ttsTtfb;
  const audioOutMs = (t.audioSamples / TTS_SAMPLE_RATE) * 1000;
  return {
    ...metrics,
    llm_ttft_ms: round(t.firstTokenAt === null ? 0 : t.firstTokenAt - t.requestedAt),
    llm_first_clause_ms: round(llmFirstClause),
    tts_ttfb_ms: round(ttsTtfb),
    first_audio_ms: round(firstAudio),
    overhead_ms: round(firstOutAt === null ? 0 : firstAudio - endpointMs - modelCritical),
    audio_out_ms: round(audioOutMs),
    rtf: audioOutMs > 0 && t.firstAudioAt !== null && t.lastAudioAt !== null ? round((t.lastAudioAt - t.firstAudioAt + ttsTtfb) / audioOutMs) : 0,
    llm_tokens_in: t.llm?.inputTokens ?? 0,
    llm_tokens_out: t.llm?.outputTokens ?? 0,
    interrupted: interrupted || (t.llm?.aborted ?? false),
    llm_wait_ms: round(t.llm?.waitMs ?? 0),
    tts_wait_ms: round(ttsWait),
  };
}
