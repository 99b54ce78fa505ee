/**
 * The streaming endpointer: push 16 kHz mono audio of any length, get turn events with
 * sample-exact positions (counted from the start of the stream).
 *
 *   speech_start    speech confirmed (lasted min_speech_ms); position where it began
 *   silence_start   the first silent frame after speech: start speculative ASR on `audio`
 *   speech_resumed  speech came back before the endpoint: drop speculative work
 *   speech_end      the turn closed after endpoint silence (or max length / end of input), with its audio
 *
 * Probabilities use hysteresis: speech starts at `activationThreshold` and ends below `releaseThreshold`.
 *
 * Adaptive endpointing: the silence that closes a turn starts at `endpointMs` and, once the
 * speculative transcript of the audio so far is known (`adaptToTranscript`), moves to
 * `minEndpointMs` after a finished sentence or question, or to `maxEndpointMs` after a connector,
 * filler, article or trailing comma ("and", "um", "the", ","): the user is most likely mid-thought.
 *
 * With a turn model (Smart Turn, `src/turn/`), the endpoint also hears how the speech ended. From
 * the first silent frame on, the model runs on the turn's audio so far, beside the speculative ASR
 * (never holding it back), and again every `turnRecheckMs` of silence, one run at a time; its latest
 * verdict moves the endpoint within the transcript cue's range (see `fusedEndpointMs`). While no
 * verdict is in (model absent, failed or still running), the transcript cue alone decides.
 */
import { z } from 'zod';
import type { TurnModel } from '../turn/turn-model.js';
import { endpointCue, SilenceJudge, type TurnModelReport } from './turn-decision.js';
import { SileroVadModel, VAD_CONTEXT_SAMPLES, VAD_FRAME_SAMPLES, VAD_SAMPLE_RATE } from './silero-model.js';
import { AudioHistory } from './audio-history.js';
import { WINDOW_SAMPLES } from '../turn/whisper-features.js';

export const endpointerOptionsSchema = z.strictObject({
  activationThreshold: z.number().min(0).max(1).default(0.5),
  releaseThreshold: z.number().min(0).max(1).default(0.35),
  /** Speech shorter than this is a blip, not a turn. */
  minSpeechMs: z.number().int().min(0).max(5_000).default(150),
  /**
   * Silence that closes a turn while no transcript cue is known (or with `adaptive` off). The
   * largest hidden cost in the pipeline: with `adaptive` on, finished sentences close at `minEndpointMs`.
   */
  endpointMs: z.number().int().min(32).max(5_000).default(400),
  /** Adaptive endpointing: the silence depends on how the speculative transcript ends. */
  adaptive: z.boolean().default(true),
  /** Silence after a finished sentence or a question (final punctuation from the ASR). */
  minEndpointMs: z.number().int().min(32).max(5_000).default(200),
  /** Silence after a connector, filler, article or trailing comma. */
  maxEndpointMs: z.number().int().min(32).max(5_000).default(900),
  /**
   * Silence before `silence_start` (and so speculative ASR) fires; 0 is the first silent frame.
   * Non-zero only to model peers whose transcript comes after their VAD's own silence (benchmarks).
   */
  speculateAfterMs: z.number().int().min(0).max(5_000).default(0),
  /** Audio kept before the detected start, so soft onsets reach ASR. */
  preRollMs: z.number().int().min(0).max(2_000).default(200),
  /** A turn this long is closed even without silence. */
  maxUtteranceMs: z.number().int().min(1_000).max(120_000).default(30_000),
  /** Use the turn model when the VAD stage has one (false: the transcript cue alone, as before). */
  turnModel: z.boolean().default(true),
  /** The model's probability at or above which a turn is complete (pipecat: above 0.5). */
  turnThreshold: z.number().min(0).max(1).default(0.5),
  /** Silence that closes a turn the model calls incomplete (unless a re-check says complete first). */
  turnIncompleteMs: z.number().int().min(32).max(10_000).default(1_500),
  /** While the silence lasts, the model runs again after this much more of it (0: only once). */
  turnRecheckMs: z.number().int().min(0).max(5_000).default(100),
});

export type EndpointerOptions = z.infer<typeof endpointerOptionsSchema>;

export function endpointerOptions(overrides: Partial<EndpointerOptions> = {}): EndpointerOptions {
  const options = endpointerOptionsSchema.parse(overrides);
  if (options.releaseThreshold > options.activationThreshold) {
    throw new RangeError(`releaseThreshold (${options.releaseThreshold}) must not exceed activationThreshold (${options.activationThreshold})`);
  }
  return options;
}

export { adaptiveEndpointMs, endpointCue, fusedEndpointMs, type EndpointCue, type EndpointDecider, type TurnModelReport, type TurnVerdict } from './turn-decision.js';

export type EndReason = 'endpoint' | 'max_length' | 'end_of_input';

export type VadEvent =
  | { type: 'speech_start'; startSample: number }
  /** silence_start and speech_end carry the turn's audio from pre-roll up to `endSample`. */
  | { type: 'silence_start'; startSample: number; endSample: number; audio: Float32Array }
  | { type: 'speech_resumed'; atSample: number }
  | {
      type: 'speech_end';
      startSample: number;
      endSample: number;
      closedAtSample: number;
      reason: EndReason;
      audio: Float32Array;
      /** The silence this turn needed to close (after any adaptation). */
      endpointMs: number;
      /** What decided the endpoint, and the turn model's part in it. */
      turn: TurnModelReport;
    };

export const samplesToMs = (samples: number) => (samples * 1000) / VAD_SAMPLE_RATE;
export const msToSamples = (ms: number) => Math.round((ms * VAD_SAMPLE_RATE) / 1000);

type Phase = 'idle' | 'maybe_speech' | 'speech' | 'trailing_silence';

export class Endpointer {
  #options: EndpointerOptions;
  readonly #model: SileroVadModel;
  readonly #state = SileroVadModel.initialState();
  readonly #input = new Float32Array(VAD_CONTEXT_SAMPLES + VAD_FRAME_SAMPLES);
  /** Samples pushed but not yet a whole frame. */
  #pending = new Float32Array(0);
  /** Recent audio: everything since the current utterance began (minus pre-roll), or the pre-roll when idle. */
  readonly #history = new AudioHistory(VAD_SAMPLE_RATE);
  /** Position of the next frame's first sample. */
  #position = 0;
  #phase: Phase = 'idle';
  #speechStart = 0;
  #silenceStart = 0;
  #silenceAnnounced = false;
  /**
   * Where the turn the model judges began, when that is before the current utterance: a joined turn
   * (a turn job) whose earlier segments the endpointer already closed. Null: the current utterance.
   */
  #turnContextStart: number | null = null;
  /** Silence needed to close the current turn, in samples (adapted to the transcript so far). */
  #endpointSamples: number;
  #busy = false;
  /** What the open silence's transcript and the turn model say about the endpoint. */
  readonly #judge: SilenceJudge;
  /** Total model compute time, ms. */
  vadMs = 0;

  constructor(model: SileroVadModel, options: EndpointerOptions, turnModel: TurnModel | null = null) {
    this.#model = model;
    this.#options = options;
    this.#endpointSamples = msToSamples(options.endpointMs);
    // A fixed endpoint (adaptive off) stays fixed: no model runs.
    this.#judge = new SilenceJudge(options.turnModel && options.adaptive ? turnModel : null);
  }

  /**
   * The turn model's run in flight, if any (settles, never rejects). Turn jobs, whose audio is all
   * there, await it before feeding on, so the verdict lands where it would in real time.
   */
  get turnVerdictPending(): Promise<void> | null {
    return this.#judge.pending;
  }

  get options(): EndpointerOptions {
    return this.#options;
  }

  /**
   * New settings from the next frame on; what was heard stays (the speech in progress, its start,
   * the position). A silence already running waits for the new endpoint.
   */
  reconfigure(options: EndpointerOptions): void {
    this.#options = options;
    this.#endpointSamples = msToSamples(options.endpointMs);
  }

  /**
   * The turn the model judges began at `startSample` (a joined turn's first segment; null: each
   * utterance is its own turn). Smart Turn wants the whole turn, not the segment after the last close:
   * its audio is kept (up to the model's 8 s window) and given to the model from there.
   */
  keepTurnContext(startSample: number | null): void {
    this.#turnContextStart = startSample;
  }

  /** Forgets the speech in progress (the client cleared it); the position and the model's state go on. */
  discardSpeech(): void {
    this.#phase = 'idle';
    this.#endpointSamples = msToSamples(this.#options.endpointMs);
  }

  /** The silence (ms) now needed to close the open turn. */
  get endpointMs(): number {
    return samplesToMs(this.#endpointSamples);
  }

  /**
   * The speculative transcript of the speech up to `endSample` is known: adapt the silence that
   * closes the turn. Ignored unless that silence is still going on (speech did not resume).
   * The new endpoint applies from the next frame (a silence already longer closes the turn then).
   */
  adaptToTranscript(transcript: string, endSample: number): void {
    if (this.#phase !== 'trailing_silence' || this.#silenceStart !== endSample) return;
    // No words heard (an empty transcript) tell nothing: the cue stays unknown.
    this.#judge.cue = transcript.trim() ? endpointCue(transcript) : null;
    this.#decide();
  }

  /** The endpoint from what is known now: the transcript cue and the model's latest verdict. */
  #decide(): void {
    this.#endpointSamples = msToSamples(this.#judge.endpointMs(this.options));
  }

  /** Runs the model on the turn so far (pre-roll to now, silence included); its verdict applies while this silence lasts. */
  #runTurnModel(): void {
    const silenceStart = this.#silenceStart;
    this.#judge.run(
      this.#position,
      () => this.#modelAudio(),
      this.options.turnThreshold,
      () => this.#phase === 'trailing_silence' && this.#silenceStart === silenceStart,
      () => this.#decide(),
    );
  }

  /** Samples seen so far. */
  get position(): number {
    return this.#position + this.#pending.length;
  }

  /** Speech is going on right now (not the silence after it, before the endpoint). */
  get speaking(): boolean {
    return this.#phase === 'speech';
  }

  /** Voice has just begun and is not yet long enough to be speech (it may still be a blip). */
  get onset(): boolean {
    return this.#phase === 'maybe_speech';
  }

  get inSpeech(): boolean {
    return this.#phase === 'speech' || this.#phase === 'trailing_silence';
  }

  /** The open utterance's audio so far (pre-roll included), or null when no speech is going on. */
  currentAudio(): Float32Array | null {
    return this.inSpeech ? this.#audio(this.#position) : null;
  }

  /** Feeds audio; resolves with the events it caused. Calls must not overlap. */
  async push(samples: Float32Array): Promise<VadEvent[]> {
    if (this.#busy) throw new Error('Endpointer.push called again before the previous push finished');
    this.#busy = true;
    try {
      const events: VadEvent[] = [];
      let data = samples;
      if (this.#pending.length > 0) {
        data = new Float32Array(this.#pending.length + samples.length);
        data.set(this.#pending);
        data.set(samples, this.#pending.length);
      }
      let offset = 0;
      for (; offset + VAD_FRAME_SAMPLES <= data.length; offset += VAD_FRAME_SAMPLES) {
        await this.#frame(data.subarray(offset, offset + VAD_FRAME_SAMPLES), events);
      }
      this.#pending = data.slice(offset);
      return events;
    } finally {
      this.#busy = false;
    }
  }

  /** Ends the input: closes an open turn (reason `end_of_input`). */
  flush(): VadEvent[] {
    if (!this.inSpeech) return [];
    const end = this.#phase === 'trailing_silence' ? this.#silenceStart : this.#position;
    return [this.#endTurn(end, 'end_of_input')];
  }

  async #frame(frame: Float32Array, events: VadEvent[]): Promise<void> {
    const frameStart = this.#position;
    this.#input.copyWithin(0, VAD_FRAME_SAMPLES);
    this.#input.set(frame, VAD_CONTEXT_SAMPLES);
    const started = performance.now();
    const probability = await this.#model.probability(this.#input, this.#state);
    this.vadMs += performance.now() - started;
    this.#history.append(frame);
    this.#position += VAD_FRAME_SAMPLES;
    const { activationThreshold, releaseThreshold } = this.options;

    switch (this.#phase) {
      case 'idle':
        if (probability >= activationThreshold) {
          this.#phase = 'maybe_speech';
          this.#speechStart = frameStart;
          this.#confirmIfLongEnough(events);
        }
        break;
      case 'maybe_speech':
        if (probability < releaseThreshold) this.#phase = 'idle';
        else this.#confirmIfLongEnough(events);
        break;
      case 'speech':
        if (probability < releaseThreshold) {
          this.#phase = 'trailing_silence';
          this.#silenceStart = frameStart;
          this.#silenceAnnounced = false;
          this.#judge.reset();
          this.#decide();
          this.#runTurnModel();
          this.#announceSilence(events);
        }
        break;
      case 'trailing_silence':
        if (probability >= activationThreshold) {
          this.#phase = 'speech';
          this.#judge.forgetSilence();
          events.push({ type: 'speech_resumed', atSample: frameStart });
        } else if (this.#position - this.#silenceStart >= this.#endpointSamples) {
          events.push(this.#endTurn(this.#silenceStart, 'endpoint'));
        } else {
          const recheck = msToSamples(this.options.turnRecheckMs);
          if (recheck > 0 && this.#judge.due(this.#position, recheck)) this.#runTurnModel();
          this.#announceSilence(events);
        }
        break;
    }
    if (this.inSpeech && this.#position - this.#speechStart >= msToSamples(this.options.maxUtteranceMs)) {
      const end = this.#phase === 'trailing_silence' ? this.#silenceStart : this.#position;
      events.push(this.#endTurn(end, 'max_length'));
    }
    // While idle only the pre-roll (plus the current frame) is kept, or a joined turn's last 8 s.
    if (this.#phase === 'idle') {
      const preRoll = msToSamples(this.options.preRollMs) + VAD_FRAME_SAMPLES;
      const context = this.#turnContextStart === null ? 0 : Math.min(WINDOW_SAMPLES, this.#position - this.#turnContextStart + preRoll);
      this.#history.keepLast(Math.max(preRoll, context));
    }
  }

  /** `silence_start` once per silence, when it has lasted `speculateAfterMs`. */
  #announceSilence(events: VadEvent[]): void {
    if (this.#silenceAnnounced || this.#position - this.#silenceStart < msToSamples(this.options.speculateAfterMs)) return;
    this.#silenceAnnounced = true;
    events.push({ type: 'silence_start', startSample: this.#speechStart, endSample: this.#silenceStart, audio: this.#audio(this.#silenceStart) });
  }

  #confirmIfLongEnough(events: VadEvent[]): void {
    if (this.#position - this.#speechStart >= Math.max(VAD_FRAME_SAMPLES, msToSamples(this.options.minSpeechMs))) {
      this.#phase = 'speech';
      events.push({ type: 'speech_start', startSample: this.#speechStart });
    }
  }

  #endTurn(endSample: number, reason: EndReason): VadEvent {
    const event: VadEvent = {
      type: 'speech_end',
      startSample: this.#speechStart,
      endSample,
      closedAtSample: this.#position,
      reason,
      audio: this.#audio(endSample),
      endpointMs: samplesToMs(this.#endpointSamples),
      turn: this.#judge.report(this.options.adaptive),
    };
    this.#phase = 'idle';
    this.#judge.reset();
    this.#endpointSamples = msToSamples(this.options.endpointMs);
    return event;
  }

  /** What the turn model hears: the turn so far (a joined turn's earlier segments too), at most its 8 s window. */
  #modelAudio(): Float32Array {
    const utteranceStart = this.#speechStart - msToSamples(this.options.preRollMs);
    const turnStart = this.#turnContextStart === null ? utteranceStart : Math.min(utteranceStart, this.#turnContextStart - msToSamples(this.options.preRollMs));
    return this.#history.slice(Math.max(turnStart, this.#position - WINDOW_SAMPLES), this.#position);
  }

  /** The utterance's audio from pre-roll before its start up to `endSample`. */
  #audio(endSample: number): Float32Array {
    return this.#history.slice(this.#speechStart - msToSamples(this.options.preRollMs), endSample);
  }
}
