/** The ASR stage's interface: 16 kHz mono float32 in, text out, with where the time went. */
import type { PriorityLike } from '../util/work-priority.js';

export interface Transcript {
  text: string;
  /** Decode time, ms. */
  asrMs: number;
  /** Length of the audio decoded, ms. */
  audioMs: number;
  /** Windows the audio was split into (Whisper sees at most 30 s at a time). */
  windows: number;
  /** Time the decode waited for the engine behind other conversations' work, ms (set by the scheduler). */
  waitMs?: number;
}

export interface TranscribeOptions {
  signal?: AbortSignal;
  /** What the decode is for (default confirmed): the scheduler orders the work of many conversations by it. */
  priority?: PriorityLike;
}

export interface Asr {
  transcribe(samples: Float32Array, options?: TranscribeOptions): Promise<Transcript>;
  dispose(): void;
}
