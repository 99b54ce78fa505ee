/**
 * A turn model double: the verdict is scripted (a fixed probability, or a function of the audio it
 * is given), so the endpointer's fusion can be tested exactly. `delayMs` holds each verdict back (a
 * slow model); `Infinity` never answers; 'fail' rejects.
 */
import type { TurnModel, TurnPrediction } from '../../src/turn/turn-model.js';

export class ScriptedTurnModelDouble implements TurnModel {
  readonly audioLengths: number[] = [];
  readonly #verdict: (audio: Float32Array) => number | 'fail';
  readonly #delayMs: number;

  constructor(verdict: number | 'fail' | ((audio: Float32Array) => number | 'fail'), delayMs = 0) {
    this.#verdict = typeof verdict === 'function' ? verdict : () => verdict;
    this.#delayMs = delayMs;
  }

  get runs(): number {
    return this.audioLengths.length;
  }

  predict(audio: Float32Array, signal?: AbortSignal): Promise<TurnPrediction> {
    const entry = this.#verdict(audio);
    this.audioLengths.push(audio.length);
    return new Promise((resolve, reject) => {
      const answer = () => (entry === 'fail' ? reject(new Error('scripted turn model failure')) : resolve({ probability: entry, ms: this.#delayMs, featuresMs: 0, modelMs: 0 }));
      if (this.#delayMs === Infinity) return;
      if (this.#delayMs === 0) queueMicrotask(answer);
      else setTimeout(answer, this.#delayMs);
      signal?.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
    });
  }

  async dispose(): Promise<void> {}
}

/** Milliseconds of digital silence (exact zeros, as the tests' padding is) at the end of 16 kHz audio. */
export function trailingSilenceMs(audio: Float32Array): number {
  let at = audio.length;
  while (at > 0 && audio[at - 1] === 0) at--;
  return (audio.length - at) / 16;
}
