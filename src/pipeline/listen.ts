/**
 * Turns audio into user turns: runs the endpointer and transcribes each turn's speech. ASR starts
 * speculatively at each `silence_start`, so in a live session its time hides inside the endpoint
 * wait; a speculative result is used only when the turn closes on exactly the audio it heard, and
 * thrown away if speech resumed.
 *
 * Live sessions close a turn at every `speech_end`; a turn job joins every segment of its audio item
 * into one turn (the user paused, but it is one question).
 *
 * The speculative transcript also adapts the endpoint (a finished question closes sooner than a
 * trailing "and") and is offered to `onSpeculation`, where a preemptive response can start on it.
 */
import type { Asr, Transcript } from '../asr/asr.js';
import { concatFloat32 } from '../audio/pcm.js';
import { WorkPriority } from '../util/work-priority.js';
import { msToSamples, samplesToMs, type Endpointer, type TurnModelReport, type VadEvent } from '../vad/endpointer.js';

/** A joined turn's later silences are transcribed speculatively while the turn fits one Whisper window (30 s). */
const MAX_SPECULATIVE_SAMPLES = 30 * 16_000;

/** Audio of a complete item is fed one VAD frame at a time, so each frame sees the cues known before it. */
const FEED_SAMPLES = 512;

export interface HeardTurn {
  segments: { startMs: number; endMs: number }[];
  transcript: string;
  vadMs: number;
  endpointMs: number;
  /** What decided the endpoint of the turn's last segment, and the turn model's part in it. */
  turn?: TurnModelReport;
  asrMs: number;
  /** ASR time left after the turn closed (zero when speculation finished in time). */
  asrCriticalMs: number;
  asrSpeculative: boolean;
  /** Time the transcript's decode waited for the engine behind other conversations' work. */
  asrWaitMs?: number;
  /** performance.now() when the turn closed: the reference point of first_audio_ms. */
  closedAt: number;
  /** performance.now() when the transcript was ready. */
  transcriptAt: number;
  /**
   * performance.now() estimate of when the last speech sample was captured at the client (live
   * sessions: its frame's arrival minus the audio after it in the frame); absent for turn jobs.
   */
  speechEndAt?: number;
}

/** A speculative transcript that is still current: speech has not resumed and the turn is open. */
export interface SpeculativeTranscript {
  text: string;
  /** The end of the speech it heard (the silence it was started at). */
  endSample: number;
}

export interface TurnListenerOptions {
  joinSegments: boolean;
  /** Called when a speculative transcript is ready while its silence is still going on. */
  onSpeculation?: (speculation: SpeculativeTranscript) => void;
  /** Estimates when a sample (position in the stream) was captured at the client; see HeardTurn.speechEndAt. */
  captureTimeOf?: (sample: number) => number;
  /**
   * Incremental transcription: while the user speaks, every this many ms of new audio the speech so
   * far is transcribed and given to `onPartial`. A decode never waits behind another: while one is
   * running, that partial is skipped. 0 or absent: off. The turn's transcript still comes from its whole audio.
   */
  partialIntervalMs?: number;
  onPartial?: (partial: { text: string; atSample: number }) => void;
}

export type ListenEvent =
  | { type: 'speech_start'; startSample: number }
  | { type: 'speech_resumed'; atSample: number }
  | { type: 'speech_end'; startSample: number; endSample: number }
  /** A closed turn; its transcript is on the way. */
  | { type: 'turn'; heard: Promise<HeardTurn> };

interface Speculation {
  endSample: number;
  startedAt: number;
  /** Cancels this speculation alone (speech resumed, or a newer one replaced it). */
  abort: AbortController;
  /** Speculative until its turn closes on exactly its audio: then confirmed (it is the turn's transcript). */
  priority: WorkPriority;
  result: Promise<Transcript>;
  /** The result handled: endpoint adapted and `onSpeculation` told. */
  settled: Promise<void>;
}

export class TurnListener {
  readonly endpointer: Endpointer;
  readonly #asr: Asr;
  readonly #signal: AbortSignal;
  readonly #options: TurnListenerOptions;
  #speculation: Speculation | null = null;
  /** The last ASR call: the next one starts after it (a decode cannot be stopped midway). */
  #asrTail: Promise<unknown> = Promise.resolve();
  #segments: HeardTurn['segments'] = [];
  #parts: Float32Array[] = [];
  #closed: { endSample: number; closedAtSample: number; at: number; speechEndAt: number | undefined; turn: TurnModelReport } | null = null;
  #vadMsAtTurnStart = 0;
  /** Position of the last partial decode's start, and whether one is running. */
  #partialAt = 0;
  #partialRunning = false;
  /** Counts closed turns, so a partial that finishes after its turn closed is dropped. */
  #generation = 0;

  constructor(endpointer: Endpointer, asr: Asr, signal: AbortSignal, options: TurnListenerOptions) {
    this.endpointer = endpointer;
    this.#asr = asr;
    this.#signal = signal;
    this.#options = options;
  }

  /** The speculative ASR in flight for the current silence, if any (settles, never rejects). */
  get speculation(): Promise<unknown> | null {
    return this.#speculation?.settled ?? null;
  }

  async push(samples: Float32Array): Promise<ListenEvent[]> {
    const events = this.#handle(await this.endpointer.push(samples));
    this.#maybePartial();
    return events;
  }

  #maybePartial(): void {
    const interval = this.#options.partialIntervalMs ?? 0;
    if (interval <= 0 || !this.#options.onPartial || !this.endpointer.speaking) return;
    const position = this.endpointer.position;
    if (position - this.#partialAt < msToSamples(interval) || this.#partialRunning) return;
    const audio = this.endpointer.currentAudio();
    if (!audio) return;
    this.#partialAt = position;
    this.#partialRunning = true;
    const generation = this.#generation;
    // Lowest priority, and skipped (rejected) rather than queued when the engine is busy.
    this.#asr
      .transcribe(audio, { signal: this.#signal, priority: 'partial' })
      .then(
        (transcript) => {
          if (generation === this.#generation && transcript.text) this.#options.onPartial?.({ text: transcript.text, atSample: position });
        },
        () => undefined,
      )
      .finally(() => (this.#partialRunning = false));
  }

  /** Ends the input: an open turn is closed (reason end_of_input). */
  flush(): ListenEvent[] {
    return this.#handle(this.endpointer.flush());
  }

  /** Drops the speech in progress (the client cleared it): no event or turn comes of it. */
  discardSpeech(): void {
    this.#dropSpeculation();
    this.endpointer.discardSpeech();
    this.#generation++;
    this.#reset();
  }

  /** For joined turns: the one turn of everything pushed, or null when there was no speech. */
  finishJoined(): Promise<HeardTurn> | null {
    return this.#closed ? this.#transcribe() : null;
  }

  #handle(events: VadEvent[]): ListenEvent[] {
    const out: ListenEvent[] = [];
    for (const event of events) {
      if (event.type === 'speech_start') {
        this.#dropSpeculation();
        // A joined turn begins: the turn model hears it from here, across the segments to come.
        if (this.#options.joinSegments && this.#segments.length === 0) this.endpointer.keepTurnContext(event.startSample);
        this.#partialAt = event.startSample;
        out.push({ type: 'speech_start', startSample: event.startSample });
      } else if (event.type === 'speech_resumed') {
        this.#dropSpeculation();
        out.push({ type: 'speech_resumed', atSample: event.atSample });
      } else if (event.type === 'silence_start') {
        this.#dropSpeculation();
        // A joined turn's later segments: the transcript of all of it so far, so the endpoint cue reads
        // the whole turn; past one Whisper window the decodes would grow with every pause, so none.
        const heardSoFar = this.#parts.reduce((sum, part) => sum + part.length, event.audio.length);
        if (this.#parts.length === 0 || heardSoFar <= MAX_SPECULATIVE_SAMPLES) {
          const audio = this.#parts.length > 0 ? concatFloat32([...this.#parts, event.audio]) : event.audio;
          this.#speculation = this.#speculate(event.endSample, audio);
        }
      } else {
        const at = performance.now();
        this.#generation++;
        this.#segments.push({ startMs: samplesToMs(event.startSample), endMs: samplesToMs(event.endSample) });
        this.#parts.push(event.audio);
        this.#closed = { endSample: event.endSample, closedAtSample: event.closedAtSample, at, speechEndAt: this.#options.captureTimeOf?.(event.endSample), turn: event.turn };
        out.push({ type: 'speech_end', startSample: event.startSample, endSample: event.endSample });
        if (!this.#options.joinSegments) out.push({ type: 'turn', heard: this.#transcribe() });
      }
    }
    return out;
  }

  #speculate(endSample: number, audio: Float32Array): Speculation {
    const abort = new AbortController();
    const priority = new WorkPriority('speculative');
    const result = this.#transcribeAudio(audio, AbortSignal.any([this.#signal, abort.signal]), priority);
    const speculation: Speculation = {
      endSample,
      startedAt: performance.now(),
      abort,
      priority,
      result,
      settled: result.then(
        (transcript) => {
          // Stale once speech resumed or the turn closed (the closed turn uses the result itself).
          if (this.#speculation !== speculation) return;
          this.endpointer.adaptToTranscript(transcript.text, endSample);
          this.#options.onSpeculation?.({ text: transcript.text, endSample });
        },
        () => undefined,
      ),
    };
    return speculation;
  }

  /** Transcribes the closed turn (speculative result when usable) and starts a new one. */
  #transcribe(): Promise<HeardTurn> {
    const closed = this.#closed!;
    const segments = this.#segments;
    const parts = this.#parts;
    const speculation = this.#speculation;
    const vadMs = this.endpointer.vadMs - this.#vadMsAtTurnStart;
    this.#reset();
    // The speculation of the turn's last silence heard all of it (a joined turn's earlier parts too).
    const usable = speculation !== null && speculation.endSample === closed.endSample;
    if (!usable) speculation?.abort.abort();
    else speculation.priority.promote();
    const final = usable ? speculation.result : this.#transcribeAudio(concatFloat32(parts), this.#signal, 'confirmed');
    return (async () => {
      const asrStartedAt = usable ? speculation.startedAt : performance.now();
      const transcript = await final;
      const transcriptAt = performance.now();
      return {
        segments,
        transcript: transcript.text,
        vadMs,
        endpointMs: samplesToMs(closed.closedAtSample - closed.endSample),
        turn: closed.turn,
        asrMs: transcript.asrMs,
        asrCriticalMs: Math.max(0, transcriptAt - Math.max(closed.at, asrStartedAt)),
        asrSpeculative: usable,
        asrWaitMs: transcript.waitMs ?? 0,
        closedAt: closed.at,
        transcriptAt,
        speechEndAt: closed.speechEndAt,
      };
    })();
  }

  /** Speech resumed or a new speculation replaces it: the old one's result will not be used. */
  #dropSpeculation(): void {
    this.#speculation?.abort.abort();
    this.#speculation = null;
  }

  /** One ASR call at a time per listener: a cancelled speculation gives way at once, or as soon as its decode ends. */
  #transcribeAudio(audio: Float32Array, signal: AbortSignal, priority: WorkPriority | 'confirmed'): Promise<Transcript> {
    const result = this.#asrTail.then(() => this.#asr.transcribe(audio, { signal, priority }));
    this.#asrTail = result.catch(() => undefined);
    return result;
  }

  #reset(): void {
    if (this.#options.joinSegments) this.endpointer.keepTurnContext(null);
    this.#segments = [];
    this.#parts = [];
    this.#closed = null;
    this.#speculation = null;
    this.#vadMsAtTurnStart = this.endpointer.vadMs;
  }
}

/**
 * A turn job's audio item: every segment joined into one turn; null when there is no speech.
 * The audio is all there, so it is fed as fast as it is processed; at each silence the speculative
 * transcript and the turn model's verdicts are awaited before feeding on, as if both were instant in
 * audio time, so the adaptive endpoint and a preemptive start see the same cues a live turn would.
 */
export async function listenForTurn(
  endpointer: Endpointer,
  asr: Asr,
  samples: Float32Array,
  signal: AbortSignal,
  hooks: { onSpeculation?: (speculation: SpeculativeTranscript) => void; onSpeech?: () => void; onSpeechEnd?: (endSample: number) => void } = {},
): Promise<HeardTurn | null> {
  const listener = new TurnListener(endpointer, asr, signal, { joinSegments: true, onSpeculation: hooks.onSpeculation });
  for (let at = 0; at < samples.length; at += FEED_SAMPLES) {
    signal.throwIfAborted();
    const speculating = listener.speculation;
    const events = await listener.push(samples.subarray(at, at + FEED_SAMPLES));
    if (events.some((e) => e.type === 'speech_start' || e.type === 'speech_resumed')) hooks.onSpeech?.();
    for (const event of events) if (event.type === 'speech_end') hooks.onSpeechEnd?.(event.endSample);
    if (listener.speculation !== speculating) await listener.speculation;
    await endpointer.turnVerdictPending;
  }
  listener.flush();
  return listener.finishJoined();
}
