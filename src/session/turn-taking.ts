/**
 * Turn-taking: the user's side of a live session. Client audio comes in (16 kHz PCM16), is fed
 * through the listener (VAD, endpointer, ASR) one frame at a time, and becomes speech events and
 * closed turns; with manual turn detection it collects until the client commits it. Speech while
 * the assistant speaks is judged here: it pauses the answer at once, cuts it once it has lasted
 * `minInterruptionMs`, and a blip lets it resume. The session's audio clock (samples heard, capture
 * times) lives here too.
 *
 * What happens to answers is not decided here: the core is told through `TurnTakingHost`.
 */
import { pcm16ToFloat32 } from '../audio/pcm.js';
import { errorMessage, type Logger } from '../log/logger.js';
import type { Engines } from '../pipeline/engines.js';
import { TurnListener, type HeardTurn, type ListenEvent } from '../pipeline/listen.js';
import { samplesToMs, type EndpointerOptions } from '../vad/endpointer.js';
import { CaptureClock } from './capture-clock.js';
import { CORE_INPUT_SAMPLE_RATE, DEFAULT_TURN_DETECTION, type CoreEvent, type SessionCoreOptions, type TurnDetection } from './core-types.js';
import { newId } from './ids.js';

/** Unprocessed client frames that mean the VAD is not keeping up (at 200 ms a frame, about 5 s). */
const BACKLOG_WARNING_FRAMES = 25;

/** What turn-taking asks of the core it serves. */
export interface TurnTakingHost {
  readonly sessionId: string;
  /** The session has ended: input is ignored. */
  ended(): boolean;
  /** An answer is being made or its audio is still playing: speech now may be a barge-in. */
  assistantSpeaking(): boolean;
  /** The number the speech in progress will have as a turn (partial transcripts carry it). */
  nextTurn(): number;
  emit(event: CoreEvent): void;
  /** Speech started or resumed, or the endpointer changed: a speculative answer no longer fits. */
  discardSpeculation(): void;
  /** The endpoint wait's speculative transcript: an answer may start on it. */
  speculate(text: string): void;
  /** Speech began while the assistant spoke: hold its output until the speech is judged. */
  pauseAnswer(): void;
  /** The speech was a blip: the output continues where it paused. */
  resumeAnswer(): void;
  /** The speech lasted long enough to be an interruption: the answer is cut. */
  interrupt(): void;
  /** A user turn closed; with `answer` it is answered right away. */
  turn(itemId: string, heard: Promise<HeardTurn>, answer: boolean): void;
  /** Something the client should hear about; with `end`, the session ends. */
  fail(code: string, message: string, end: boolean): void;
}

export class TurnTaking {
  readonly #host: TurnTakingHost;
  readonly #engines: Pick<Engines, 'vad' | 'asr'>;
  readonly #options: SessionCoreOptions;
  readonly #log: Logger;
  readonly #signal: AbortSignal;
  #listener: TurnListener;
  /** Arrival times of client frames: when each sample was captured (live metrics count from there). */
  readonly #clock = new CaptureClock(CORE_INPUT_SAMPLE_RATE);
  /** Samples given to endpointers so far (a new endpointer's position 0 is this count when it opens). */
  #listenedSamples = 0;
  /** Client audio taken in so far (the clock that `heardMs` reads). */
  #heardSamples = 0;
  #detection: TurnDetection = DEFAULT_TURN_DETECTION;
  /** Manual turn detection: audio since the last commit or clear. */
  #manual: { chunks: Float32Array[]; samples: number } = { chunks: [], samples: 0 };
  /** The id the current speech's user item will get. */
  #speechItemId = newId('item');
  /** Client frames waiting for the listener, and whether they are being fed to it. */
  readonly #backlog: { frames: Int16Array[]; samples: number; pumping: boolean } = { frames: [], samples: 0, pumping: false };
  /** Sample where speech started while the assistant was speaking, until it is judged. */
  #bargeInAt: number | null = null;

  /** `signal` stops the listener's work (the session's end). */
  constructor(host: TurnTakingHost, engines: Pick<Engines, 'vad' | 'asr'>, options: SessionCoreOptions, log: Logger, signal: AbortSignal) {
    this.#host = host;
    this.#engines = engines;
    this.#options = options;
    this.#log = log;
    this.#signal = signal;
    this.#listener = this.#openListener();
  }

  get detection(): Readonly<TurnDetection> {
    return this.#detection;
  }

  /** The endpointer's effective options (the session's, with the turn detection's overrides). */
  get endpointerOptions(): Readonly<EndpointerOptions> {
    return this.#listener.endpointer.options;
  }

  /** Client audio taken in so far, in samples. */
  get heardSamples(): number {
    return this.#heardSamples;
  }

  /** Speech during an answer is waiting to be judged (an interruption or a blip). */
  get bargeInPending(): boolean {
    return this.#bargeInAt !== null;
  }

  /** Changes how turns are found; a new endpointer starts when its options change (speech in progress is dropped). */
  setDetection(detection: TurnDetection): void {
    const vadChanged = JSON.stringify(detection.vad) !== JSON.stringify(this.#detection.vad);
    this.#detection = detection;
    if (vadChanged) this.#listener = this.#openListener();
    if (detection.mode === 'vad') this.clearAudio();
  }

  #openListener(): TurnListener {
    this.#host.discardSpeculation();
    const base = this.#listenedSamples;
    return new TurnListener(this.#engines.vad.openStream({ ...this.#options.vad, ...this.#detection.vad }), this.#engines.asr, this.#signal, {
      joinSegments: false,
      onSpeculation: (speculation) => this.#host.speculate(speculation.text),
      captureTimeOf: (sample) => this.#clock.captureTimeOf(base + sample),
      partialIntervalMs: this.#options.partialTranscriptMs ?? 0,
      onPartial: (partial) => {
        if (!this.#host.ended()) this.#host.emit({ type: 'partial_transcript', turn: this.#host.nextTurn(), itemId: this.#speechItemId, text: partial.text });
      },
    });
  }

  /** 16 kHz PCM16 from the client (see `SessionCore.pushAudio`). */
  push(pcm: Int16Array, arrivedAt: number): void {
    if (this.#detection.mode === 'manual') {
      // No endpointer: the audio waits for the client's commit, up to the longest turn the VAD would allow.
      const maxMs = this.#listener.endpointer.options.maxUtteranceMs;
      if (samplesToMs(this.#manual.samples + pcm.length) > maxMs) {
        this.#host.fail('AUDIO_BUFFER_FULL', `the uncommitted audio would pass ${maxMs} ms (the longest turn); commit or clear it first; this audio was dropped`, false);
        return;
      }
      this.#heardSamples += pcm.length;
      this.#manual.chunks.push(pcm16ToFloat32(pcm));
      this.#manual.samples += pcm.length;
      return;
    }
    this.#clock.arrived(pcm.length, arrivedAt);
    const backlog = this.#backlog;
    backlog.frames.push(pcm);
    backlog.samples += pcm.length;
    if (samplesToMs(backlog.samples) > this.#options.maxBacklogMs) {
      // Faster than real time for long: memory would grow without limit.
      this.#host.fail('AUDIO_BACKLOG', `more than ${this.#options.maxBacklogMs} ms of audio waiting to be processed; send audio at real-time speed`, true);
      return;
    }
    if (backlog.frames.length === BACKLOG_WARNING_FRAMES) {
      // Audio arrives faster than it is processed: turns will be detected late.
      this.#log.warn('session audio processing is falling behind real time', { session_id: this.#host.sessionId, frames_waiting: backlog.frames.length });
    }
    void this.#pump();
  }

  /** Closes the user's turn now (see `SessionCore.commitAudio`). */
  commit(): string | null {
    if (this.#detection.mode === 'vad') {
      const events = this.#listener.flush();
      const id = this.#speechItemId;
      for (const event of events) this.#onListen(event);
      return events.some((e) => e.type === 'turn') ? id : null;
    }
    if (this.#manual.samples === 0) return null;
    const { chunks: audio, samples } = this.#manual;
    this.clearAudio();
    const id = newId('item');
    const closedAt = performance.now();
    const heard = (async (): Promise<HeardTurn> => {
      const joined = new Float32Array(samples);
      let offset = 0;
      for (const part of audio) {
        joined.set(part, offset);
        offset += part.length;
      }
      const transcript = await this.#engines.asr.transcribe(joined, { signal: this.#signal });
      const transcriptAt = performance.now();
      return { segments: [], transcript: transcript.text, vadMs: 0, endpointMs: 0, asrMs: transcript.asrMs, asrCriticalMs: transcriptAt - closedAt, asrSpeculative: false, closedAt, transcriptAt };
    })();
    this.#host.turn(id, heard, false);
    return id;
  }

  /** Drops the audio not yet committed (manual turn detection). */
  clearAudio(): void {
    this.#manual = { chunks: [], samples: 0 };
  }

  /** The session ended: frames still waiting are dropped. */
  dispose(): void {
    this.#backlog.frames.length = 0;
    this.#backlog.samples = 0;
  }

  /** Feeds client audio through the listener, one frame at a time, in order. */
  async #pump(): Promise<void> {
    const backlog = this.#backlog;
    if (backlog.pumping) return;
    backlog.pumping = true;
    try {
      while (backlog.frames.length > 0 && !this.#host.ended()) {
        const pcm = backlog.frames.shift()!;
        backlog.samples -= pcm.length;
        this.#heardSamples += pcm.length;
        const listener = this.#listener;
        const events = await listener.push(pcm16ToFloat32(pcm));
        this.#listenedSamples += pcm.length;
        for (const event of events) this.#onListen(event);
        this.#judgeBargeIn();
      }
    } catch (error) {
      if (!this.#host.ended()) {
        this.#log.error('session audio processing failed', { error: errorMessage(error) });
        this.#host.fail('INTERNAL', errorMessage(error), true);
      }
    } finally {
      backlog.pumping = false;
    }
  }

  #onListen(event: ListenEvent): void {
    switch (event.type) {
      case 'speech_start': {
        // Speech again: the turn will not read as the speculative transcript did.
        this.#host.discardSpeculation();
        const duringAnswer = this.#host.assistantSpeaking();
        this.#speechItemId = newId('item');
        this.#host.emit({ type: 'speech_start', atMs: samplesToMs(event.startSample), itemId: this.#speechItemId, duringAnswer });
        if (duringAnswer && this.#detection.interruptResponse) {
          // The user may be interrupting: stop sending at once, judge when we know more.
          this.#bargeInAt = event.startSample;
          this.#host.pauseAnswer();
        }
        break;
      }
      case 'speech_end':
        this.#host.emit({ type: 'speech_end', startMs: samplesToMs(event.startSample), endMs: samplesToMs(event.endSample), itemId: this.#speechItemId });
        break;
      case 'turn':
        if (this.#bargeInAt !== null) {
          // Speech that ended before it became an interruption: a blip, not a turn.
          this.#bargeInAt = null;
          this.#host.resumeAnswer();
          event.heard.catch(() => undefined);
          break;
        }
        this.#host.turn(this.#speechItemId, event.heard, this.#detection.createResponse);
        break;
      case 'speech_resumed':
        this.#host.discardSpeculation();
        break;
    }
  }

  /** Speech during an answer that has lasted long enough cancels it. */
  #judgeBargeIn(): void {
    // Only speech counts: the silence after a blip must not make it an interruption.
    if (this.#bargeInAt === null || !this.#listener.endpointer.speaking) return;
    const spokenMs = samplesToMs(this.#listener.endpointer.position - this.#bargeInAt);
    if (spokenMs < this.#options.minInterruptionMs) return;
    this.#bargeInAt = null;
    this.#host.interrupt();
  }
}
