/**
 * THE calibration table for one NVIDIA L4 (24 GB, 300 GB/s), used by the calibrated engine doubles
 * of `npm run bench -- latency`. No build machine has a GPU or the production weights: these model
 * times are not measured here, they come from the published figures cited in each row (see
 * ../shared/docs/LATENCY.md, "Calibration for one NVIDIA L4"). Everything else in the benchmark (VAD,
 * endpointer, listener, preemption, chunker, pacer, WebSocket) is our real code, measured.
 */
export interface CalibrationRow {
  /** Central value. */
  central: number;
  /** Top of the published range (the "slow" run uses these). */
  high: number;
  unit: string;
  source: string;
}

export const L4_CALIBRATION = {
  asrMelMs: {
    central: 3,
    high: 3 * 1.6,
    unit: 'ms per decode',
    source: 'LATENCY.md Whisper row: 3 ms mel; range x0.7-1.6 (whisper.cpp v1.7.5 V100 table, sherpa-onnx trims the window)',
  },
  asrEncoderBaseMs: {
    central: 13.75,
    high: 13.75 * 1.6,
    unit: 'ms + 1.125 ms per second of audio',
    source: 'LATENCY.md: Whisper small.en encoder 16 / 19 / 25 ms for 2 / 5 / 10 s of audio (linear fit), x0.7-1.6',
  },
  asrDecoderStepMs: {
    central: 5.5,
    high: 5.5 * 1.6,
    unit: 'ms per decoder step; (3.3 x seconds + 2) steps',
    source: 'LATENCY.md: whisper.cpp V100 small decoder 2.39 ms/token scaled to L4 = 5.5 ms; 3.3 tokens per second of speech + 2',
  },
  llmPromptFixedMs: {
    central: 5,
    high: 5,
    unit: 'ms per prompt evaluation',
    source: 'LATENCY.md Qwen2.5-1.5B Q4_K_M prompt row: 5 ms + n / rate',
  },
  llmPromptTokensPerS: {
    central: 10_000,
    high: 7_000,
    unit: 'prompt tokens/s (high = slowest rate)',
    source: 'LATENCY.md: RTX 3070 Ti pp512 10,293 tok/s (Qwen2-arch 1.5B Q4_K_M), range 7k-14k',
  },
  llmDecodeMsPerToken: {
    central: 7.5,
    high: 10,
    unit: 'ms per generated token',
    source: 'LATENCY.md: RTX 3070 Ti tg128 233 tok/s scaled by bandwidth (300 vs 608 GB/s) + fixed cost = ~135 tok/s, range 6.5-10',
  },
  ttsFirstChunkMs: {
    central: 200,
    high: 300,
    unit: 'ms from a request to its first audio chunk',
    source: 'LATENCY.md VibeVoice-Realtime-0.5B: model card ~300 ms, docs ~200 ms; DGX Spark measured ~300 ms. Every request (clause) pays it',
  },
  ttsFrameMs: {
    central: 70,
    high: 90,
    unit: 'ms compute per 133 ms latent frame (RTF ~0.5)',
    source: 'LATENCY.md: DGX Spark 64 ms/frame; "real-time on T4"; L4 ~2x T4 for torch TTS; range 55-90',
  },
  sharedGpuFactor: {
    central: 1.5,
    high: 1.7,
    unit: 'x slowdown of TTS and LLM decode while both run on the one GPU',
    source: 'LATENCY.md: Kyutai Unmute TTS ~750 ms on one L40S vs ~450 ms on separate GPUs; range x1.3-1.7',
  },
} satisfies Record<string, CalibrationRow>;

export type CalibrationKey = keyof typeof L4_CALIBRATION;
export type ModelTimes = Record<CalibrationKey, number>;

/** The model times of one run: central values, or every row at the top of its range. */
export function modelTimes(profile: 'central' | 'high'): ModelTimes {
  return Object.fromEntries(Object.entries(L4_CALIBRATION).map(([key, row]) => [key, row[profile]])) as ModelTimes;
}

/** Length of a 133 ms VibeVoice latent frame in 24 kHz samples (7.5 Hz acoustic tokenizer). */
export const TTS_FRAME_SAMPLES = 3_200;
