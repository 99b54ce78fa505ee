/**
 * THE calibration table for one NVIDIA L4 (24 GB, 300 GB/s), used by the calibrated engine doubles
 * of `npm run bench -- latency`. No build machine has a GPU or the production weights: these model
 * times are not measured here, they come from the published figures cited in each row (see
 * ../shared/docs/LATENCY.md, "Calibration for one NVIDIA L4", and TTS-ENGINE.md for how our TTS engine's
 * batched step grows with streams). Everything else in the benchmark (VAD, endpointer, listener,
 * preemption, the answer's text streaming into the TTS, pacer, WebSocket) is our real code, measured.
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
  ttsFrameMs: {
    central: 70,
    high: 90,
    unit: 'ms per batched engine step for one stream: one 133 ms latent frame (RTF ~0.5)',
    source: 'LATENCY.md: DGX Spark 64 ms/frame; "real-time on T4"; L4 ~2x T4 for torch TTS; range 55-90',
  },
  ttsWindowMs: {
    central: 70 * (15 / 290),
    high: 90 * (38 / 350),
    unit: 'ms per text window (5 tokens through the text and TTS LMs) taken in a step',
    source:
      'TTS-ENGINE.md measured per component at real size: bf16 text window 15 ms against 290 ms per frame (B=1), scaled to the L4 frame above; high: fp32 38 of 350 ms. First audio after the first text window = one window + one step: 74 ms (high 98)',
  },
  ttsStepRatio2: {
    central: 1.02,
    high: 1.3,
    unit: 'x the one-stream step time when 2 streams advance in one batched step',
    source: 'TTS-ENGINE.md measured scaling of a frame with batch (real architecture): bf16 B=2 1.02; high: fp32 1.30 (CPU matmuls; pessimistic for a GPU)',
  },
  ttsStepRatio4: {
    central: 1.13,
    high: 1.87,
    unit: 'x the one-stream step time at 4 streams',
    source: 'TTS-ENGINE.md: bf16 B=4 1.13; high: fp32 1.87',
  },
  ttsStepRatio8: {
    central: 1.4,
    high: 2.56,
    unit: 'x the one-stream step time at 8 streams',
    source: 'TTS-ENGINE.md: bf16 B=8 1.40; high: fp32 2.56',
  },
  ttsStepRatio16: {
    central: 1.83,
    high: 4.07,
    unit: 'x the one-stream step time at 16 streams',
    source: 'TTS-ENGINE.md: bf16 B=16 1.83; high: fp32 4.07',
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

/** The step time ratio for `streams` streams batched, interpolated between the measured batch sizes (linear in log2 B). */
export function ttsStepRatio(times: ModelTimes, streams: number): number {
  const points: [number, number][] = [
    [1, 1],
    [2, times.ttsStepRatio2],
    [4, times.ttsStepRatio4],
    [8, times.ttsStepRatio8],
    [16, times.ttsStepRatio16],
  ];
  if (streams <= 1) return 1;
  for (let i = 1; i < points.length; i++) {
    const [b0, r0] = points[i - 1]!;
    const [b1, r1] = points[i]!;
    if (streams <= b1) return r0 + ((r1 - r0) * Math.log2(streams / b0)) / Math.log2(b1 / b0);
  }
  // Past 16: the last measured slope per doubling goes on.
  const [b, r] = points.at(-1)!;
  return r + (r - points.at(-2)![1]) * Math.log2(streams / b);
}

/** Length of a 133 ms VibeVoice latent frame in 24 kHz samples (7.5 Hz acoustic tokenizer). */
export const TTS_FRAME_SAMPLES = 3_200;

/**
 * How each engine's time grows with the work running on it at once (the capacity benchmark, `npm run
 * bench -- capacity`). A job on an engine with B jobs active progresses at 1 / ratio(B) of its
 * one-job speed; ratios between the tabled B are interpolated linearly, beyond the last they grow
 * along the last segment.
 */
export interface BatchScalingRow {
  /** B -> per-step time relative to B = 1. */
  ratios: Record<number, number>;
  source: string;
  /** True when no published figure exists and the row is our assumption. */
  assumption?: boolean;
}

export const L4_BATCH_SCALING = {
  tts: {
    ratios: { 1: 1, 2: 1.02, 4: 1.13, 8: 1.4, 16: 1.83 },
    source:
      "../shared/docs/TTS-ENGINE.md, 'how upstream's modules scale with batch', bf16 row: one speech frame for B streams 290 / 296 / 327 / 406 / 532 ms (measured on CPU at the real architecture; the ratio is what carries over). To be replaced by our engine's own `npm run bench -- tts` figures on a GPU when they land",
  },
  llm: {
    ratios: { 1: 1, 2: 1.63, 4: 2.23, 8: 2.39, 16: 2.75 },
    source:
      'llama.cpp examples/batched-bench/README.md sample results (LLaMA 7B F16, PP 128, TG 128, prompt not shared, all layers on the GPU): S_TG 41.57 / 50.90 / 74.44 / 139.43 / 242.23 t/s at B = 1 / 2 / 4 / 8 / 16, so one decode step takes B x 41.57 / S_TG of the B = 1 step. Its GPU is not named, and a 1.5B Q4_K_M model leaves more of the GPU idle at B = 1, so these ratios are on the pessimistic side for ours',
  },
  asr: {
    ratios: { 1: 1, 2: 1.6 },
    source:
      'ASSUMPTION: sherpa-onnx has no batch decode for Whisper (offline-recognizer-whisper-impl.h DecodeStreams: "batch decoding is not implemented yet", it loops over the streams), so the worker runs at most two decodes at once; no published figure gives two onnxruntime CUDA decodes on one GPU, so each is taken to run 1.6x slower while the other runs (together 1.25x the throughput of one)',
    assumption: true,
  },
} satisfies Record<string, BatchScalingRow>;

export type BatchScaling = Record<keyof typeof L4_BATCH_SCALING, (active: number) => number>;

/** The ratio of a row at B jobs, interpolated. */
export function batchRatio(row: BatchScalingRow, active: number): number {
  const points = Object.entries(row.ratios)
    .map(([b, r]) => [Number(b), r] as const)
    .sort((a, b) => a[0] - b[0]);
  if (active <= points[0]![0]) return points[0]![1];
  for (let i = 1; i < points.length; i++) {
    const [b0, r0] = points[i - 1]!;
    const [b1, r1] = points[i]!;
    if (active <= b1 || i === points.length - 1) return r0 + ((active - b0) * (r1 - r0)) / (b1 - b0);
  }
  return points.at(-1)![1];
}

export function l4BatchScaling(): BatchScaling {
  return {
    tts: (b) => batchRatio(L4_BATCH_SCALING.tts, b),
    llm: (b) => batchRatio(L4_BATCH_SCALING.llm, b),
    asr: (b) => batchRatio(L4_BATCH_SCALING.asr, b),
  };
}
