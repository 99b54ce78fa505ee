/**
 * Whisper (small.en in production) through sherpa-onnx-node's OfflineRecognizer. One recognizer
 * per process, one stream per utterance; decoding runs on sherpa's own threads (decodeAsync), off
 * the event loop. Config is checked before it reaches sherpa, because some bad configurations
 * (a missing metadata key, an unknown language) end the whole process from native code.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import sherpa, { type OfflineRecognizer } from 'sherpa-onnx-node';
import { ConfigError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { assertReadableFile } from '../models/files.js';
import { readOnnxMetadata } from '../models/onnx-metadata.js';
import type { Asr, Transcript } from './asr.js';

export interface WhisperAsrConfig {
  encoder: string;
  decoder: string;
  tokens: string;
  /**
   * 'cuda' needs sherpa-onnx's GPU libraries swapped into the npm package (the image does this);
   * without them the load fails. Where the machine decides (S2S_DEVICE=auto), the config asks for
   * 'cuda' only when they are there (handler/pipeline-config.ts).
   */
  provider: 'cuda' | 'cpu';
  numThreads: number;
  /** Hint shown in the error for missing files (how to fetch them). */
  fetchHint?: string;
}

const SAMPLE_RATE = 16_000;
/** Whisper decodes at most 30 s; longer audio is cut into windows below this, at quiet points. */
const MAX_WINDOW_SAMPLES = 28 * SAMPLE_RATE;
const MIN_WINDOW_SAMPLES = 20 * SAMPLE_RATE;

/** Every metadata key sherpa-onnx reads from a Whisper encoder (RUNTIMES.md). */
export const WHISPER_METADATA_KEYS = [
  'n_mels', 'n_text_layer', 'n_text_ctx', 'n_text_state', 'n_vocab', 'sot', 'eot', 'blank_id',
  'translate', 'transcribe', 'is_multilingual', 'no_timestamps', 'no_speech', 'sot_sequence',
] as const;

export class SherpaWhisperAsr implements Asr {
  readonly provider: 'cuda' | 'cpu';
  readonly #recognizer: OfflineRecognizer;

  private constructor(recognizer: OfflineRecognizer, provider: 'cuda' | 'cpu') {
    this.#recognizer = recognizer;
    this.provider = provider;
  }

  static async load(config: WhisperAsrConfig, log: Logger): Promise<SherpaWhisperAsr> {
    const metadata = await validateWhisperFiles(config);
    const provider = config.provider;
    if (provider === 'cuda' && !sherpaHasCuda()) {
      throw new ConfigError('ASR: CUDA was required but sherpa-onnx has no CUDA libraries (the GPU image swaps them in); set S2S_DEVICE=auto to let the machine decide');
    }
    const recognizer = await sherpa.OfflineRecognizer.createAsync({
      featConfig: { sampleRate: SAMPLE_RATE, featureDim: Number(metadata['n_mels']) },
      modelConfig: {
        whisper: { encoder: config.encoder, decoder: config.decoder, language: 'en', task: 'transcribe' },
        tokens: config.tokens,
        numThreads: config.numThreads,
        provider,
        debug: 0,
      },
    });
    log.info('ASR loaded', { provider, encoder: config.encoder });
    return new SherpaWhisperAsr(recognizer, provider);
  }

  async transcribe(samples: Float32Array, options: { signal?: AbortSignal } = {}): Promise<Transcript> {
    const started = performance.now();
    const texts: string[] = [];
    const windows = splitIntoWindows(samples);
    for (const window of windows) {
      options.signal?.throwIfAborted();
      const stream = this.#recognizer.createStream();
      stream.acceptWaveform({ samples: window, sampleRate: SAMPLE_RATE });
      const result = await this.#recognizer.decodeAsync(stream);
      const text = result.text.trim();
      if (text) texts.push(text);
    }
    return {
      text: texts.join(' '),
      asrMs: performance.now() - started,
      audioMs: (samples.length / SAMPLE_RATE) * 1000,
      windows: windows.length,
    };
  }

  dispose(): void {
    // sherpa-onnx-node frees the recognizer when it is garbage-collected.
  }
}

/**
 * Checks files and metadata so sherpa-onnx never sees a configuration that would end the process.
 * Returns the encoder's metadata.
 */
export async function validateWhisperFiles(config: WhisperAsrConfig): Promise<Record<string, string>> {
  const hint = config.fetchHint;
  await assertReadableFile(config.encoder, 'ASR encoder', hint);
  await assertReadableFile(config.decoder, 'ASR decoder', hint);
  await assertReadableFile(config.tokens, 'ASR tokens', hint);
  let metadata: Record<string, string>;
  try {
    metadata = await readOnnxMetadata(config.encoder);
  } catch (cause) {
    throw new ConfigError(`ASR encoder ${config.encoder} is not a readable ONNX file: ${(cause as Error).message}`, { cause });
  }
  const missing = WHISPER_METADATA_KEYS.filter((key) => metadata[key] === undefined);
  if (missing.length > 0) {
    throw new ConfigError(`ASR encoder ${config.encoder} lacks Whisper metadata keys sherpa-onnx needs: ${missing.join(', ')} (not a sherpa-onnx Whisper export?)`);
  }
  if (metadata['is_multilingual'] !== '0') {
    const tokens = metadata['all_language_tokens']?.split(',') ?? [];
    const codes = metadata['all_language_codes']?.split(',') ?? [];
    if (tokens.length === 0 || tokens.length !== codes.length || !codes.includes('en')) {
      throw new ConfigError(`ASR encoder ${config.encoder} is multilingual but its language tables are missing or lack "en"`);
    }
  }
  return metadata;
}

/** Whether sherpa-onnx has its CUDA provider library (the GPU image swaps it in). */
export function sherpaHasCuda(): boolean {
  try {
    const require = createRequire(import.meta.url);
    const dir = dirname(require.resolve('sherpa-onnx-linux-x64/package.json'));
    return existsSync(join(dir, 'libonnxruntime_providers_cuda.so'));
  } catch {
    return false;
  }
}

/** Cuts audio longer than one Whisper window at the quietest 100 ms between 20 and 28 s. */
export function splitIntoWindows(samples: Float32Array): Float32Array[] {
  const windows: Float32Array[] = [];
  let start = 0;
  while (samples.length - start > MAX_WINDOW_SAMPLES) {
    const step = SAMPLE_RATE / 10;
    let cut = start + MAX_WINDOW_SAMPLES;
    let quietest = Number.POSITIVE_INFINITY;
    for (let at = start + MIN_WINDOW_SAMPLES; at + step <= start + MAX_WINDOW_SAMPLES; at += step) {
      let energy = 0;
      for (let i = at; i < at + step; i++) energy += samples[i]! * samples[i]!;
      if (energy < quietest) {
        quietest = energy;
        cut = at + step / 2;
      }
    }
    windows.push(samples.subarray(start, cut));
    start = cut;
  }
  windows.push(samples.subarray(start));
  return windows;
}
