/** The TTS stage's interface: text in, 24 kHz mono PCM16 chunks out as they are made. */
import type { PriorityLike } from '../util/work-priority.js';

export const TTS_SAMPLE_RATE = 24_000;

export interface SynthesisOptions {
  signal: AbortSignal;
  voice?: string;
  /** Classifier-free guidance scale (VibeVoice default 1.5). */
  cfg?: number;
  /** Diffusion steps (VibeVoice default 5). */
  steps?: number;
  /** Confirmed (default) or speculative (a preemptive answer): the scheduler orders streams by it. */
  priority?: PriorityLike;
}

export interface SynthesisStats {
  /** From the request to the first audio chunk, ms. */
  ttfbMs: number | null;
  samples: number;
  /** Requests sent (more than one when the text was split or the server was busy). */
  requests: number;
  /** Time the synthesis waited for a TTS stream behind other conversations' speech, ms (set by the scheduler). */
  waitMs?: number;
}

export interface Synthesis extends AsyncIterable<Int16Array> {
  /** Filled in as chunks arrive; final once the iteration ends. */
  readonly stats: SynthesisStats;
}

export interface Tts {
  readonly voices: readonly string[];
  readonly defaultVoice: string;
  synthesize(text: string, options: SynthesisOptions): Synthesis;
  dispose(): Promise<void>;
}
