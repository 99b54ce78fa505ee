/**
 * How long a silence must last to close a turn: the transcript's cue (a finished sentence, a dangling
 * connector, neither), the turn model's verdict, and their fusion into one endpoint; and SilenceJudge, which
 * keeps what is known about the open silence (its cue, the model's latest verdict, the model run in flight)
 * for the endpointer. Imports nothing of the endpointer's, so the endpointer can use it without a cycle.
 */
import type { TurnModel } from '../turn/turn-model.js';

/** The endpointer's settings the decision reads (EndpointerOptions has them all). */
export interface EndpointSilences {
  adaptive: boolean;
  endpointMs: number;
  minEndpointMs: number;
  maxEndpointMs: number;
  turnIncompleteMs: number;
}

/** Words after which a speaker is usually mid-thought: connectors, fillers, articles, prepositions. */
const CONTINUATION_WORDS = new Set([
  'and', 'but', 'or', 'so', 'because', 'then', 'if', 'that', 'which', 'when', 'while', 'although',
  'um', 'uh', 'er', 'erm', 'hmm', 'like',
  'the', 'a', 'an', 'my', 'your', 'our', 'their', 'this', 'some',
  'to', 'of', 'in', 'on', 'for', 'with', 'at', 'from', 'about', 'is', 'are', 'was',
]);

export type EndpointCue = 'sentence_end' | 'continuation' | 'none';

/** How a (speculative) transcript ends, for the endpoint: a finished sentence, a dangling connector, or neither. */
export function endpointCue(transcript: string): EndpointCue {
  const text = transcript.trim();
  if (!text) return 'none';
  if (/(,|;|:|\.\.\.|…|-)$/.test(text)) return 'continuation';
  if (/[.!?]["')\]]*$/.test(text)) return 'sentence_end';
  const last = /([a-z']+)\W*$/i.exec(text)?.[1]?.toLowerCase();
  return last !== undefined && CONTINUATION_WORDS.has(last) ? 'continuation' : 'none';
}

/** The silence (ms) that closes a turn whose speech so far reads `transcript`. */
export function adaptiveEndpointMs(transcript: string, options: Omit<EndpointSilences, 'turnIncompleteMs'>): number {
  if (!options.adaptive) return options.endpointMs;
  const cue = endpointCue(transcript);
  // The bounds never cross the base: a job that only shortens endpoint_ms gets no longer minimum.
  if (cue === 'sentence_end') return Math.min(options.minEndpointMs, options.endpointMs);
  return cue === 'continuation' ? Math.max(options.maxEndpointMs, options.endpointMs) : options.endpointMs;
}

/** The model's latest verdict on the open silence. */
export interface TurnVerdict {
  probability: number;
  complete: boolean;
}

/**
 * The silence (ms) that closes a turn, from the transcript cue (null: not known yet) and the turn
 * model's verdict (null: none). The model moves the endpoint inside the cue's range; it lengthens any
 * wait it calls incomplete, but shortens one only where the words agree (a finished sentence) or are
 * not known yet: words that just stop, with no full stop (Whisper writes one where it hears a sentence
 * end), keep the base wait, and a dangling connector's is never shortened. Measured: a complete
 * verdict on words with no cue was most often a pause inside a phrase (ALSA's "Front | center", the
 * bench's content-word pauses). With `adaptive` off the silence is fixed: `endpointMs`.
 *   cue \ model    complete        incomplete                 no verdict
 *   sentence end    min (200)       base (400)                 min
 *   unknown         min             turnIncompleteMs (1500)    base
 *   none            base (400)      turnIncompleteMs (1500)    base
 *   continuation    max (900)       max(turnIncompleteMs, max) max
 */
export function fusedEndpointMs(
  cue: EndpointCue | null,
  verdict: TurnVerdict | null,
  options: EndpointSilences,
): number {
  // A fixed silence (adaptive off) is what it says, with or without a model.
  if (!options.adaptive) return options.endpointMs;
  const min = Math.min(options.minEndpointMs, options.endpointMs);
  const max = Math.max(options.maxEndpointMs, options.endpointMs);
  if (!verdict) {
    if (cue === null || cue === 'none') return options.endpointMs;
    return cue === 'sentence_end' ? min : max;
  }
  const incomplete = Math.max(options.turnIncompleteMs, options.endpointMs);
  if (cue === 'continuation') return verdict.complete ? max : Math.max(incomplete, max);
  if (cue === 'sentence_end') return verdict.complete ? min : options.endpointMs;
  if (!verdict.complete) return incomplete;
  return cue === null ? min : options.endpointMs;
}

/** What closed a turn: the turn model's verdict, the transcript cue, or the fixed silence alone. */
export type EndpointDecider = 'model' | 'transcript' | 'silence';

/** How the turn model took part in a turn's endpoint (in speech_end and the turn's metrics). */
export interface TurnModelReport {
  decidedBy: EndpointDecider;
  /** The verdict in force when the turn closed (null: none had come). */
  probability: number | null;
  verdict: 'complete' | 'incomplete' | null;
  /** Wall time of the latest verdict (features, inference and queueing); null without one. */
  modelMs: number | null;
  /** Model runs on this turn's last silence. */
  runs: number;
  /** A run failed (the transcript cue decided). */
  failed: boolean;
}

/**
 * What is known about the open silence: the transcript cue, the turn model's latest verdict, and its run in
 * flight. `reset()` at each new silence and each closed turn; `forgetSilence()` when speech resumes.
 */
export class SilenceJudge {
  /** The open silence's transcript cue (null: not known yet). */
  cue: EndpointCue | null = null;
  #verdict: (TurnVerdict & { ms: number }) | null = null;
  #run: { abort: AbortController; done: Promise<void> } | null = null;
  /** Where the last run started, runs on this silence, and whether one failed. */
  #runAt = 0;
  #runs = 0;
  #failed = false;

  constructor(readonly model: TurnModel | null) {}

  /** The run in flight, if any (settles, never rejects). */
  get pending(): Promise<void> | null {
    return this.#run?.done ?? null;
  }

  endpointMs(options: EndpointSilences): number {
    return fusedEndpointMs(this.cue, this.#verdict, options);
  }

  /** A re-check is due `recheckSamples` after the last run started. */
  due(position: number, recheckSamples: number): boolean {
    return position - this.#runAt >= recheckSamples;
  }

  /**
   * Runs the model on `audio()` unless one is running (or there is no model); its verdict counts only if
   * `stillCurrent()` says the same silence is still open, and then `onVerdict()` is called.
   */
  run(position: number, audio: () => Float32Array, threshold: number, stillCurrent: () => boolean, onVerdict: () => void): void {
    const model = this.model;
    if (!model || this.#run) return;
    const abort = new AbortController();
    this.#runAt = position;
    this.#runs++;
    const done = model.predict(audio(), abort.signal).then(
      (prediction) => {
        if (!stillCurrent() || abort.signal.aborted) return;
        this.#verdict = { probability: prediction.probability, complete: prediction.probability >= threshold, ms: prediction.ms };
        onVerdict();
      },
      () => {
        if (!abort.signal.aborted) this.#failed = true;
      },
    );
    const run = { abort, done: done.finally(() => this.#run === run && (this.#run = null)) };
    this.#run = run;
  }

  /** Drops the open silence's cue, verdict and model run (speech resumed). */
  forgetSilence(): void {
    this.#run?.abort.abort();
    this.#run = null;
    this.cue = null;
    this.#verdict = null;
  }

  /** A new silence, or the turn closed: nothing known, no runs counted. */
  reset(): void {
    this.forgetSilence();
    this.#runs = 0;
    this.#failed = false;
  }

  /** How the model took part in the turn now closing. */
  report(adaptive: boolean): TurnModelReport {
    const verdict = this.#verdict;
    const decidedBy: EndpointDecider = !adaptive ? 'silence' : verdict ? 'model' : this.cue !== null && this.cue !== 'none' ? 'transcript' : 'silence';
    return {
      decidedBy,
      probability: verdict?.probability ?? null,
      verdict: verdict ? (verdict.complete ? 'complete' : 'incomplete') : null,
      modelMs: verdict?.ms ?? null,
      runs: this.#runs,
      failed: this.#failed,
    };
  }
}
