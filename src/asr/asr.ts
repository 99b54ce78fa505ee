/** The ASR stage's interface: 16 kHz mono float32 in, text out, with where the time went. */
export interface Transcript {
  text: string;
  /** Decode time, ms. */
  asrMs: number;
  /** Length of the audio decoded, ms. */
  audioMs: number;
  /** Windows the audio was split into (Whisper sees at most 30 s at a time). */
  windows: number;
}

export interface Asr {
  transcribe(samples: Float32Array, options?: { signal?: AbortSignal }): Promise<Transcript>;
  dispose(): void;
}
