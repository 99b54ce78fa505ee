/**
 * The protocol-neutral core of a live conversation: audio in (16 kHz PCM16), turns detected by the
 * endpointer, answers spoken back at playback speed (24 kHz PCM16), with barge-in. When the user
 * starts speaking while the assistant speaks, outgoing audio pauses at once; if the speech lasts
 * `minInterruptionMs` the answer is cancelled (`interrupted`) and the speech becomes the next turn;
 * if it was a blip, audio resumes where it paused. Everything that stops work goes through one
 * AbortSignal per answer.
 *
 * Wire protocols are thin adapters around it (`live-session.ts` for our own `/ws`, `realtime/` for
 * the OpenAI Realtime API): they decode client messages into calls on the core and encode the
 * core's events and audio, which it hands to a `SessionSink`, into their own messages.
 */
import { randomUUID } from 'node:crypto';
import { pcm16ToFloat32 } from '../audio/pcm.js';
import { errorMessage, type Logger } from '../log/logger.js';
import type { ChunkerOptions } from '../llm/clause-chunker.js';
import type { Conversation } from '../llm/llm.js';
import type { Engines } from '../pipeline/engines.js';
import type { TurnMetrics } from '../pipeline/events.js';
import { TurnListener, type HeardTurn, type ListenEvent } from '../pipeline/listen.js';
import { turnMetrics } from '../pipeline/metrics.js';
import { respond } from '../pipeline/respond.js';
import { samplesToMs, type EndpointerOptions } from '../vad/endpointer.js';
import { OutputPacer } from './output-pacer.js';

/** The core hears 16 kHz PCM16 and speaks 24 kHz PCM16; adapters convert other formats at the edge. */
export const CORE_INPUT_SAMPLE_RATE = 16_000;
export const CORE_OUTPUT_SAMPLE_RATE = 24_000;

export interface SessionCoreOptions {
  voice: string;
  maxTokens: number;
  temperature: number;
  cfg: number;
  steps: number;
  chunker: Partial<ChunkerOptions>;
  vad: Partial<EndpointerOptions>;
  /** User speech this long during an answer cancels it; shorter is a blip and the answer resumes. */
  minInterruptionMs: number;
  /** Audio sent ahead of playback. */
  outputLeadMs: number;
  /** The session ends after this long without audio or messages from the client. */
  idleTimeoutMs: number;
  maxDurationMs: number;
  /** After the worker is asked to stop, the session gets this long to wrap up. */
  shutdownGraceMs: number;
}

export type SessionEndReason = 'client_end' | 'client_left' | 'idle_timeout' | 'max_duration' | 'stopped' | 'error';

export interface SessionSummary {
  reason: SessionEndReason;
  turns: number;
  audioInSamples: number;
  audioOutSamples: number;
  llmTokensIn: number;
  llmTokensOut: number;
  durationMs: number;
}

/** A summary's figures as both wire protocols and the session job's `done` report them (seconds, tokens). */
export function billedFigures(summary: SessionSummary): { turns: number; audio_in_s: number; audio_out_s: number; llm_tokens_in: number; llm_tokens_out: number } {
  return {
    turns: summary.turns,
    audio_in_s: Math.round((summary.audioInSamples / CORE_INPUT_SAMPLE_RATE) * 1000) / 1000,
    audio_out_s: Math.round((summary.audioOutSamples / CORE_OUTPUT_SAMPLE_RATE) * 1000) / 1000,
    llm_tokens_in: summary.llmTokensIn,
    llm_tokens_out: summary.llmTokensOut,
  };
}

/** Settings a client may change while the session runs; they apply to the answers that follow. */
export type AnswerSettings = Pick<SessionCoreOptions, 'voice' | 'maxTokens' | 'temperature'>;

/**
 * What the core tells its adapter, in the order things happen. `turn` numbers count user turns
 * from 0; an answer carries the number of the turn it answers.
 */
export type CoreEvent =
  | { type: 'speech_start'; atMs: number }
  | { type: 'speech_end'; startMs: number; endMs: number }
  /** Outgoing audio paused: the user may be interrupting. */
  | { type: 'paused'; turn: number }
  /** It was a blip: audio continues where it paused. */
  | { type: 'resumed'; turn: number }
  /** The answer was cut; audio the client has buffered should be dropped. */
  | { type: 'interrupted'; turn: number; by: CutReason }
  /** A user turn's text (the transcript of its speech, or what was typed). */
  | { type: 'transcript'; turn: number; text: string }
  | { type: 'answer_start'; turn: number; answerId: string }
  | { type: 'answer_text'; turn: number; answerId: string; delta: string }
  /** The answer is over (finished, cut or failed): where its time went. */
  | { type: 'answer_done'; turn: number; answerId: string; status: 'completed' | CutReason | 'failed'; error: string | null; metrics: TurnMetrics }
  /** Something went wrong that the client should hear about; `code` is one of ours. */
  | { type: 'error'; code: string; message: string };

/** Where the core's output goes: one adapter per session. Calls never throw back into the core. */
export interface SessionSink {
  event(event: CoreEvent): void;
  /** 24 kHz PCM16 of the current answer, called as it leaves (paced at playback speed). */
  audio(pcm: Int16Array): void;
  /** The session is over; called once, before the core resolves `run()`. */
  ended(summary: SessionSummary): void;
}

/** Unprocessed client frames that mean the VAD is not keeping up (at 200 ms a frame, about 5 s). */
const BACKLOG_WARNING_FRAMES = 25;

/** Why an answer stopped before its end: the user spoke over it, or the client asked. */
export type CutReason = 'interrupted' | 'cancelled';

/** Per-answer overrides of the session's settings (a protocol's "create a response" request). */
export type AnswerRequest = Partial<AnswerSettings>;

/** The one answer being produced or played: its whole lifecycle lives in `#runAnswer`. */
interface ActiveAnswer {
  id: string;
  turn: number;
  cutBy: CutReason | null;
  abort: AbortController;
  /** When the answer's first audio left for the client (set where audio is sent, paused or not). */
  firstOutAt: number | null;
}

export class SessionCore {
  readonly id = randomUUID();
  readonly #engines: Engines;
  readonly #conversation: Conversation;
  readonly #options: SessionCoreOptions;
  readonly #log: Logger;
  readonly #sink: SessionSink;
  readonly #stop = new AbortController();
  readonly #listener: TurnListener;
  readonly #pacer: OutputPacer;
  readonly #audioQueue: Int16Array[] = [];
  #pumping = false;
  #answer: ActiveAnswer | null = null;
  /** Sample where speech started while the assistant was speaking, until it is judged. */
  #bargeInAt: number | null = null;
  #turns = 0;
  /** User turns heard or typed that no answer has taken up yet. */
  #pendingInput: string[] = [];
  /** The last heard turn among them: its timings are the answer's reference point. */
  #lastHeard: HeardTurn | null = null;
  #turnChain: Promise<void> = Promise.resolve();
  #idleTimer: NodeJS.Timeout | null = null;
  #maxTimer: NodeJS.Timeout | null = null;
  readonly #started = performance.now();
  readonly #totals = { audioInSamples: 0, llmTokensIn: 0, llmTokensOut: 0 };
  #endReason: SessionEndReason | null = null;
  readonly #ended: Promise<SessionSummary>;
  #resolveEnded!: (summary: SessionSummary) => void;

  constructor(
    engines: Engines,
    conversation: Conversation,
    options: SessionCoreOptions,
    log: Logger,
    sink: SessionSink,
    signal: AbortSignal,
    shutdown?: AbortSignal,
  ) {
    this.#engines = engines;
    this.#conversation = conversation;
    this.#options = options;
    this.#log = log;
    this.#sink = sink;
    this.#listener = new TurnListener(engines.vad.openStream(options.vad), engines.asr, this.#stop.signal, { joinSegments: false });
    this.#pacer = new OutputPacer((pcm) => this.#sendAudio(pcm), { sampleRate: CORE_OUTPUT_SAMPLE_RATE, leadMs: options.outputLeadMs });
    this.#ended = new Promise((resolve) => (this.#resolveEnded = resolve));
    signal.addEventListener('abort', () => this.end('stopped'), { once: true });
    if (signal.aborted) queueMicrotask(() => this.end('stopped'));
    shutdown?.addEventListener(
      'abort',
      () => {
        // The worker is going away: warn the client, let the answer in progress finish, then end.
        this.#error('WORKER_SHUTTING_DOWN', `this worker is shutting down; the session ends in ${options.shutdownGraceMs} ms`);
        setTimeout(() => this.end('stopped'), options.shutdownGraceMs).unref();
      },
      { once: true },
    );
  }

  get voice(): string {
    return this.#options.voice;
  }

  get voices(): readonly string[] {
    return this.#engines.tts.voices;
  }

  /** The session has ended (input is ignored from then on). */
  get isEnded(): boolean {
    return this.#endReason !== null;
  }

  /** Starts the clocks; resolves when the session ends, with what a bill is made of. */
  run(): Promise<SessionSummary> {
    this.#maxTimer = setTimeout(() => this.end('max_duration'), this.#options.maxDurationMs);
    this.touch();
    this.#log.info('session started', { session_id: this.id });
    return this.#ended;
  }

  /** Ends the session: cuts the answer in progress, tells the sink, frees the conversation. */
  end(reason: SessionEndReason): void {
    if (this.#endReason) return;
    this.#endReason = reason;
    this.#answer?.abort.abort();
    this.#stop.abort();
    this.#pacer.dispose();
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    if (this.#maxTimer) clearTimeout(this.#maxTimer);
    const summary: SessionSummary = {
      reason,
      turns: this.#turns,
      audioInSamples: this.#totals.audioInSamples,
      audioOutSamples: this.#pacer.sentSamples,
      llmTokensIn: this.#totals.llmTokensIn,
      llmTokensOut: this.#totals.llmTokensOut,
      durationMs: Math.round(performance.now() - this.#started),
    };
    this.#sink.ended(summary);
    // The conversation is freed once the turn in progress has let go of it.
    void this.#turnChain.finally(() => this.#conversation.dispose());
    this.#log.info('session ended', { session_id: this.id, reason, turns: summary.turns });
    this.#resolveEnded(summary);
  }

  /** The client is there: the idle clock restarts (it never runs out while an answer is playing). */
  touch(): void {
    if (this.#endReason) return;
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => {
      if (this.#answer || this.#pacer.speaking) this.touch();
      else this.end('idle_timeout');
    }, this.#options.idleTimeoutMs);
  }

  /** Changes settings for the answers that follow. */
  configure(settings: Partial<AnswerSettings>): void {
    Object.assign(this.#options, settings);
  }

  // ---- input ---------------------------------------------------------------------------------

  /** 16 kHz PCM16 from the client, processed in order (the core keeps the array). */
  pushAudio(pcm: Int16Array): void {
    if (this.#endReason) return;
    this.#audioQueue.push(pcm);
    if (this.#audioQueue.length === BACKLOG_WARNING_FRAMES) {
      // Audio arrives faster than it is processed: turns will be detected late.
      this.#log.warn('session audio processing is falling behind real time', { session_id: this.id, frames_waiting: this.#audioQueue.length });
    }
    void this.#pump();
  }

  /** A typed user turn: it cuts an answer that is playing and is answered next. */
  submitText(text: string): void {
    if (this.#endReason) return;
    this.#interruptIfSpeaking();
    this.#queueTurn(Promise.resolve(typedTurn(text)));
  }

  /** Feeds client audio through the listener, one frame at a time, in order. */
  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (this.#audioQueue.length > 0 && !this.#endReason) {
        const pcm = this.#audioQueue.shift()!;
        this.#totals.audioInSamples += pcm.length;
        for (const event of await this.#listener.push(pcm16ToFloat32(pcm))) this.#onListen(event);
        this.#judgeBargeIn();
      }
    } catch (error) {
      if (!this.#endReason) {
        this.#log.error('session audio processing failed', { error: errorMessage(error) });
        this.#error('INTERNAL', errorMessage(error));
        this.end('error');
      }
    } finally {
      this.#pumping = false;
    }
  }

  #onListen(event: ListenEvent): void {
    switch (event.type) {
      case 'speech_start':
        this.#emit({ type: 'speech_start', atMs: samplesToMs(event.startSample) });
        if (this.#answer || this.#pacer.speaking) {
          // The user may be interrupting: stop sending at once, judge when we know more.
          this.#bargeInAt = event.startSample;
          this.#pacer.pause();
          this.#emit({ type: 'paused', turn: this.#answer?.turn ?? this.#turns - 1 });
        }
        break;
      case 'speech_end':
        this.#emit({ type: 'speech_end', startMs: samplesToMs(event.startSample), endMs: samplesToMs(event.endSample) });
        break;
      case 'turn':
        if (this.#bargeInAt !== null) {
          // Speech that ended before it became an interruption: a blip, not a turn.
          this.#bargeInAt = null;
          this.#pacer.resume();
          this.#emit({ type: 'resumed', turn: this.#answer?.turn ?? this.#turns - 1 });
          event.heard.catch(() => undefined);
          break;
        }
        this.#queueTurn(event.heard);
        break;
      case 'speech_resumed':
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
    this.#interruptIfSpeaking();
  }

  #interruptIfSpeaking(): void {
    if (!this.#answer && !this.#pacer.speaking) return;
    this.#cut('interrupted');
  }

  /** Stops the answer in progress at once: generation, synthesis and the audio not yet sent. */
  #cut(by: CutReason): void {
    const turn = this.#answer?.turn ?? this.#turns - 1;
    if (this.#answer) this.#answer.cutBy = by;
    this.#answer?.abort.abort();
    this.#pacer.flush();
    this.#emit({ type: 'interrupted', turn, by });
  }

  // ---- answers -------------------------------------------------------------------------------

  /**
   * Asks for an answer to the user turns not answered yet (protocols with manual turns). It waits
   * for the turn in progress, like every answer. Returns the answer's id.
   */
  requestAnswer(request: AnswerRequest = {}): string {
    const id = randomUUID();
    this.#chain(() => this.#runAnswer(id, this.#turns - 1, request));
    return id;
  }

  /** Cuts the answer in progress (the client asked); false when there is none. */
  cancelAnswer(): boolean {
    if (!this.#answer && !this.#pacer.speaking) return false;
    this.#cut('cancelled');
    return true;
  }

  /** Runs `step` after everything queued before it: turns and answers happen one after another. */
  #chain(step: () => Promise<void>): void {
    this.#turnChain = this.#turnChain.then(step).catch((error: unknown) => {
      this.#log.error('session turn failed', { error: errorMessage(error) });
      this.#error('TURN_FAILED', errorMessage(error));
    });
  }

  /** A user turn: its text becomes pending input; with `answer`, it is answered right away. */
  #queueTurn(heard: Promise<HeardTurn>, answer = true): void {
    const turn = this.#turns++;
    this.#chain(async () => {
      if (this.#endReason) return;
      const heardTurn = await heard;
      if (this.#endReason) return;
      this.#emit({ type: 'transcript', turn, text: heardTurn.transcript });
      if (!heardTurn.transcript) return;
      this.#pendingInput.push(heardTurn.transcript);
      this.#lastHeard = heardTurn;
      if (answer) await this.#runAnswer(randomUUID(), turn, {});
    });
  }

  /** The whole life of one answer: start, stream, pace, finish or cut, account. Nothing else starts or ends one. */
  async #runAnswer(id: string, turn: number, request: AnswerRequest): Promise<void> {
    if (this.#endReason) return;
    const userText = this.#pendingInput.join('\n');
    const heard = this.#lastHeard ?? typedTurn(userText);
    this.#pendingInput = [];
    this.#lastHeard = null;
    const abort = new AbortController();
    const answer: ActiveAnswer = { id, turn, abort, firstOutAt: null, cutBy: null };
    this.#answer = answer;
    const signal = AbortSignal.any([abort.signal, this.#stop.signal]);
    const response = respond(this.#conversation, this.#engines.tts, userText, {
      signal,
      voice: request.voice ?? this.#options.voice,
      maxTokens: request.maxTokens ?? this.#options.maxTokens,
      temperature: request.temperature ?? this.#options.temperature,
      cfg: this.#options.cfg,
      steps: this.#options.steps,
      chunker: this.#options.chunker,
    });
    this.#emit({ type: 'answer_start', turn, answerId: id });
    let failure: unknown = null;
    try {
      for await (const item of response.items) {
        if (signal.aborted) break;
        if (item.kind === 'text') this.#emit({ type: 'answer_text', turn, answerId: id, delta: item.delta });
        else this.#pacer.enqueue(item.pcm);
      }
      if (!signal.aborted) await this.#pacer.drained();
    } catch (error) {
      failure = error;
    } finally {
      if (this.#answer === answer) this.#answer = null;
    }
    const metrics = turnMetrics(heard, response.timings, answer.firstOutAt, signal.aborted);
    this.#totals.llmTokensIn += metrics.llm_tokens_in;
    this.#totals.llmTokensOut += metrics.llm_tokens_out;
    if (failure !== null) {
      this.#log.error('session answer failed', { error: errorMessage(failure) });
      this.#emit({ type: 'answer_done', turn, answerId: id, status: 'failed', error: errorMessage(failure), metrics });
      return;
    }
    const status = !signal.aborted ? 'completed' : (answer.cutBy ?? 'cancelled');
    this.#emit({ type: 'answer_done', turn, answerId: id, status, error: null, metrics });
  }

  // ---- output --------------------------------------------------------------------------------

  #emit(event: CoreEvent): void {
    this.#sink.event(event);
  }

  /** Called by the pacer for each chunk as it leaves: the audio in it belongs to the current answer. */
  #sendAudio(pcm: Int16Array): void {
    if (this.#answer) this.#answer.firstOutAt ??= performance.now();
    this.#sink.audio(pcm);
  }

  #error(code: string, message: string): void {
    this.#emit({ type: 'error', code, message });
  }
}

/** A typed turn has no audio: its "heard" record carries the text and zero listening time. */
function typedTurn(text: string): HeardTurn {
  const now = performance.now();
  return { segments: [], transcript: text, vadMs: 0, endpointMs: 0, asrMs: 0, asrCriticalMs: 0, asrSpeculative: false, closedAt: now, transcriptAt: now };
}
