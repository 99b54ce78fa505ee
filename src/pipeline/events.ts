/**
 * The events a turn job streams (DESIGN.md, "Turn job contract") and the per-turn metrics
 * (DESIGN.md, "Metrics"). Names here are the public contract: change them knowingly.
 */
export interface TurnMetrics {
  /** VAD compute for this turn's audio. */
  vad_ms: number;
  /** Silence waited (in audio time) before the turn was closed. */
  endpoint_ms: number;
  /** What decided the endpoint: "model" (the turn model's verdict with the transcript cue), "transcript" (the cue alone), "silence" (neither). */
  endpoint_decided_by: 'model' | 'transcript' | 'silence';
  /** The turn model's probability that the turn was complete, in force when it closed (null: no verdict). */
  turn_probability: number | null;
  /** That verdict at the configured threshold (null: no verdict: model off, absent, failed or slower than the endpoint). */
  turn_verdict: 'complete' | 'incomplete' | null;
  /** Wall time of that verdict (features, inference, queueing); 0 without one. */
  turn_model_ms: number;
  /** ASR decode time. */
  asr_ms: number;
  /** LLM request to first token. */
  llm_ttft_ms: number;
  /** LLM request to the first piece handed to TTS. */
  llm_first_clause_ms: number;
  /** First TTS request to its first audio chunk. */
  tts_ttfb_ms: number;
  /** End of the user's speech to the first audio chunk leaving the worker (endpoint silence included). */
  first_audio_ms: number;
  /** first_audio_ms minus the endpoint and model time on its critical path: our own glue. */
  overhead_ms: number;
  /** Length of the spoken answer. */
  audio_out_ms: number;
  /** TTS wall time divided by audio_out_ms (below 1 is faster than real time). */
  rtf: number;
  /** ASR time that was not hidden inside the endpoint wait (on the critical path). */
  asr_critical_ms: number;
  /** The ASR result came from the speculative run started at the first silent frame. */
  asr_speculative: boolean;
  llm_tokens_in: number;
  llm_tokens_out: number;
  /** The response was stopped early. */
  interrupted: boolean;
  /**
   * true: the answer played was started preemptively, on the speculative transcript, during the
   * endpoint wait; false: it started after the turn closed; "discarded": a preemptive answer was
   * thrown away (speech resumed or the transcript changed) and the answer was started again.
   */
  preemptive: boolean | 'discarded';
  /** LLM tokens (prompt + generated) of preemptive answers thrown away this turn; not billed. */
  llm_tokens_wasted: number;
}

export type TurnEvent =
  | { type: 'vad'; turn: number; start_ms: number; end_ms: number }
  | { type: 'transcript'; turn: number; text: string }
  | { type: 'text'; turn: number; delta: string }
  | { type: 'audio'; turn: number; seq: number; sample_rate: number; format: 'pcm16'; data: string }
  | ({ type: 'metrics'; turn: number } & TurnMetrics);

export interface DoneEvent {
  type: 'done';
  turns: number;
  /** What a per-request bill is made of. */
  audio_in_s: number;
  audio_out_s: number;
  llm_tokens_in: number;
  llm_tokens_out: number;
  /** Tokens of preemptive answers thrown away (counted apart, not billed). */
  llm_tokens_wasted: number;
  execution_ms: number;
}

export type JobEvent = TurnEvent | DoneEvent;
