/**
 * The TTS stage's interface: a stream per spoken answer. It is opened with a voice, text is pushed
 * into it as the LLM writes it, and it is ended when the answer ends; 24 kHz mono PCM16 chunks come
 * out as they are made, while text still arrives. The stream's signal cancels it (barge-in, a
 * discarded preemptive answer, a job stopped).
 */
export const TTS_SAMPLE_RATE = 24_000;

/** A confirmed answer goes before speculative (preemptive) ones when the engine has no free slot. */
export type TtsPriority = 'confirmed' | 'speculative';

export interface TtsStreamOptions {
  signal: AbortSignal;
  voice?: string;
  /** Classifier-free guidance scale (VibeVoice default 1.5). */
  cfg?: number;
  /** Diffusion steps (VibeVoice default 5). */
  steps?: number;
  /** Default confirmed. */
  priority?: TtsPriority;
}

export interface TtsStreamStats {
  /**
   * tts_ttfb_ms: from the first text pushed to the engine (the first moment a text window could start:
   * text after normalisation, on its way to the server) to the first audio chunk, ms. Null until then.
   */
  ttfbMs: number | null;
  /** performance.now() of the first text pushed to the engine. */
  firstTextAt: number | null;
  /** The server queued the stream (every slot was taken) when it was opened. */
  queued: boolean;
  /**
   * A queued stream: from the server's `opened` (queued) to its first audio chunk, ms: the wait for a
   * slot plus the first window (the protocol does not say when a queued stream starts). 0 when not queued.
   */
  queueWaitMs: number;
  samples: number;
  /** The text as sent to the engine (after normalisation for speech), in order. */
  spokenText: string;
  /** Time the stream waited for a TTS slot behind other conversations' speech, ms (set by the scheduler). */
  waitMs?: number;
}

export interface TtsStream extends AsyncIterable<Int16Array> {
  /** Filled in as the stream runs; final once the iteration ends. */
  readonly stats: TtsStreamStats;
  /** More text (any split, mid-word included). Ignored after end() or once the stream stopped. */
  push(text: string): void;
  /** No more text: speak what is left, then finish. */
  end(): void;
  /** A speculative stream becomes confirmed (the turn it answers was confirmed). */
  promote(): void;
}

export interface Tts {
  readonly voices: readonly string[];
  readonly defaultVoice: string;
  /** Opens a stream; an unknown voice throws InvalidInputError at once. */
  open(options: TtsStreamOptions): TtsStream;
  dispose(): Promise<void>;
}

/** The whole of `text` spoken on one stream: open, push, end (warm-up, benches, tests). */
export function speakText(tts: Tts, text: string, options: TtsStreamOptions): TtsStream {
  const stream = tts.open(options);
  stream.push(text);
  stream.end();
  return stream;
}
