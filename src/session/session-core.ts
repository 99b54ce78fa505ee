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
 *
 * The conversation's items (what the client sees, what a cut or truncation keeps, when the model's
 * history must be rebuilt) are kept by `ConversationItems` (conversation-items.ts).
 */
import { randomUUID } from 'node:crypto';
import { pcm16ToFloat32 } from '../audio/pcm.js';
import { errorMessage, type Logger } from '../log/logger.js';
import type { ChunkerOptions } from '../llm/clause-chunker.js';
import type { Conversation } from '../llm/llm.js';
import type { ToolChoice, ToolSet } from '../llm/tools.js';
import type { Engines } from '../pipeline/engines.js';
import type { DoneEvent, TurnMetrics } from '../pipeline/events.js';
import { TurnListener, type HeardTurn, type ListenEvent } from '../pipeline/listen.js';
import { turnMetrics } from '../pipeline/metrics.js';
import { PreemptiveResponder, type PreemptionMode, type PreemptiveOutcome } from '../pipeline/preemptive.js';
import { respond, type Response, type ResponseOptions } from '../pipeline/respond.js';
import { samplesToMs, type EndpointerOptions } from '../vad/endpointer.js';
import { CaptureClock } from './capture-clock.js';
import { ConversationItems, type ConversationItem } from './conversation-items.js';
import { newId } from './ids.js';
import { OutputPacer } from './output-pacer.js';

export type { ConversationItem } from './conversation-items.js';

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
  /** Incremental transcription: a partial transcript every this many ms of speech; 0 or absent: off. */
  partialTranscriptMs?: number;
  /** Answer during the endpoint wait (see pipeline/preemptive.ts); default full. */
  preemption?: PreemptionMode;
  /** User speech this long during an answer cancels it; shorter is a blip and the answer resumes. */
  minInterruptionMs: number;
  /** Audio sent ahead of playback. */
  outputLeadMs: number;
  /** The session ends after this long without audio or messages from the client. */
  idleTimeoutMs: number;
  maxDurationMs: number;
  /** After the worker is asked to stop, the session gets this long to wrap up. */
  shutdownGraceMs: number;
  /** Client audio waiting to be processed, at most; more ends the session (a client faster than real time). */
  maxBacklogMs: number;
  /** Answer audio the client has not taken yet (the sink's `unreadBytes`) above which the pacer holds. */
  maxUnreadBytes: number;
  /** A client that takes no audio this long while an answer waits to be sent is stuck: the session ends. */
  stuckMs: number;
}

export type SessionEndReason = 'client_end' | 'client_left' | 'idle_timeout' | 'max_duration' | 'stopped' | 'error';

export interface SessionSummary {
  reason: SessionEndReason;
  turns: number;
  audioInSamples: number;
  audioOutSamples: number;
  llmTokensIn: number;
  llmTokensOut: number;
  /** Tokens of preemptive answers thrown away (not billed). */
  llmTokensWasted: number;
  durationMs: number;
}

/**
 * A summary's figures as both wire protocols and the session job's `done` report them (seconds,
 * tokens). llm_tokens_wasted (preemptive answers thrown away) is reported beside the billed tokens.
 */
export function billedFigures(summary: SessionSummary): Omit<DoneEvent, 'type' | 'execution_ms'> {
  return {
    turns: summary.turns,
    audio_in_s: Math.round((summary.audioInSamples / CORE_INPUT_SAMPLE_RATE) * 1000) / 1000,
    audio_out_s: Math.round((summary.audioOutSamples / CORE_OUTPUT_SAMPLE_RATE) * 1000) / 1000,
    llm_tokens_in: summary.llmTokensIn,
    llm_tokens_out: summary.llmTokensOut,
    llm_tokens_wasted: summary.llmTokensWasted,
  };
}

/** Settings a client may change while the session runs; they apply to the answers that follow. */
export interface AnswerSettings {
  voice: string;
  maxTokens: number;
  temperature: number;
  /** The system prompt instead of the session's own; undefined keeps the session's. */
  instructions?: string;
  /** false: answers are text only (no TTS). */
  speak?: boolean;
  /** Functions the model may call, and how it must choose (default "auto"). */
  tools?: ToolSet;
  toolChoice?: ToolChoice;
}

/** How turns are found. Native sessions use the defaults: the endpointer closes turns, each is answered, speech cuts answers. */
export interface TurnDetection {
  /** 'vad': the endpointer closes turns; 'manual': audio collects until the client commits it. */
  mode: 'vad' | 'manual';
  /** Endpointer overrides on top of the session's own. */
  vad: Partial<EndpointerOptions>;
  /** A closed turn is answered at once (else the client asks with `requestAnswer`). */
  createResponse: boolean;
  /** User speech pauses and, when long enough, cuts an answer (else the client decides). */
  interruptResponse: boolean;
}

export const DEFAULT_TURN_DETECTION: TurnDetection = { mode: 'vad', vad: {}, createResponse: true, interruptResponse: true };

/**
 * What the core tells its adapter, in the order things happen. `turn` numbers count user turns
 * from 0; an answer carries the number of the turn it answers.
 */
export type CoreEvent =
  /** `itemId` is the id the turn's user item will have if the speech becomes a turn. */
  | { type: 'speech_start'; atMs: number; itemId: string; duringAnswer: boolean }
  | { type: 'speech_end'; startMs: number; endMs: number; itemId: string }
  /** An item joined the conversation, after `previousItemId` (null: first). */
  | { type: 'item_added'; item: ConversationItem; previousItemId: string | null }
  /** Outgoing audio paused: the user may be interrupting. */
  | { type: 'paused'; turn: number }
  /** It was a blip: audio continues where it paused. */
  | { type: 'resumed'; turn: number }
  /** The answer was cut; audio the client has buffered should be dropped. */
  | { type: 'interrupted'; turn: number; by: CutReason }
  /** The words so far of the speech in progress: `turn` and `itemId` are those it will have. */
  | { type: 'partial_transcript'; turn: number; itemId: string; text: string }
  /** A user turn's text (the transcript of its speech, or what was typed). */
  | { type: 'transcript'; turn: number; itemId: string; text: string; spoken: boolean; asrMs: number }
  /** An answer starts. Its assistant message joins the conversation later, with `answer_message`, if it says anything. */
  | { type: 'answer_start'; turn: number; answerId: string; speak: boolean }
  /**
   * The answer's assistant message (`item`, in progress, no text yet) joins the conversation after `previousItemId`:
   * at its first text, or at its end when it made no call. An answer that only calls a function has none.
   */
  | { type: 'answer_message'; turn: number; answerId: string; item: ConversationItem; previousItemId: string | null }
  /** Text of the answer's message (which has joined by then). */
  | { type: 'answer_text'; turn: number; answerId: string; itemId: string; delta: string }
  /** The answer calls a function (its arguments match the tool's schema); `item` is the call's item, after `previousItemId`. */
  | { type: 'function_call'; turn: number; answerId: string; item: ConversationItem; previousItemId: string | null }
  /**
   * The answer is over (finished, cut or failed): its message as it now stands, where its time went.
   * After an answer that only called a function, `item` never joined the conversation (no `answer_message` came).
   */
  | { type: 'answer_done'; turn: number; answerId: string; item: ConversationItem; status: 'completed' | CutReason | 'failed'; error: string | null; metrics: TurnMetrics }
  /** Something went wrong that the client should hear about; `code` is one of ours. */
  | { type: 'error'; code: string; message: string };

/** Where the core's output goes: one adapter per session. Calls never throw back into the core. */
export interface SessionSink {
  event(event: CoreEvent): void;
  /** 24 kHz PCM16 of the current answer, called as it leaves (paced at playback speed). */
  audio(pcm: Int16Array): void;
  /** The session is over; called once, before the core resolves `run()`. */
  ended(summary: SessionSummary): void;
  /** Bytes sent that the client has not taken yet (a socket's `bufferedAmount`); without it, sending never holds. */
  unreadBytes?(): number;
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
  item: ConversationItem;
  cutBy: CutReason | null;
  abort: AbortController;
  /** When the answer's first audio left for the client (set where audio is sent, paused or not). */
  firstOutAt: number | null;
  /** Samples of this answer that have left for the client. */
  sentSamples: number;
}

export class SessionCore {
  readonly id = randomUUID();
  readonly #engines: Engines;
  readonly #conversation: Conversation;
  readonly #options: SessionCoreOptions;
  readonly #settings: AnswerSettings;
  readonly #log: Logger;
  readonly #sink: SessionSink;
  readonly #stop = new AbortController();
  #listener: TurnListener;
  /** Arrival times of client frames: when each sample was captured (live metrics count from there). */
  readonly #clock = new CaptureClock(CORE_INPUT_SAMPLE_RATE);
  /** Samples given to endpointers so far (a new endpointer's position 0 is this count when it opens). */
  #listenedSamples = 0;
  readonly #preemption: PreemptiveResponder;
  /** Turns and answers queued or running on the chain. */
  #chained = 0;
  #turnDetection: TurnDetection = DEFAULT_TURN_DETECTION;
  /** Manual turn detection: audio since the last commit or clear. */
  #manualBuffer: Float32Array[] = [];
  #manualSamples = 0;
  /** The id the current speech's user item will get. */
  #speechItemId = newId('item');
  readonly #items: ConversationItems;
  readonly #pacer: OutputPacer;
  readonly #audioQueue: Int16Array[] = [];
  #queuedSamples = 0;
  #pumping = false;
  #answer: ActiveAnswer | null = null;
  /** Sample where speech started while the assistant was speaking, until it is judged. */
  #bargeInAt: number | null = null;
  #turns = 0;
  /** The last heard turn among them: its timings are the answer's reference point. */
  #lastHeard: HeardTurn | null = null;
  #turnChain: Promise<void> = Promise.resolve();
  /** Answers asked for and withdrawn before they started. */
  readonly #withdrawn = new Set<string>();
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
    this.#settings = { voice: options.voice, maxTokens: options.maxTokens, temperature: options.temperature };
    this.#log = log;
    this.#sink = sink;
    this.#preemption = new PreemptiveResponder(conversation, engines.tts, options.preemption ?? 'full', () => this.#responseOptions({}), this.#stop.signal);
    this.#listener = this.#openListener();
    // A history the session was opened with is part of the conversation (and of any rebuild of it).
    this.#items = new ConversationItems(conversation.history, CORE_OUTPUT_SAMPLE_RATE);
    this.#pacer = new OutputPacer((pcm) => this.#sendAudio(pcm), {
      sampleRate: CORE_OUTPUT_SAMPLE_RATE,
      leadMs: options.outputLeadMs,
      canSend: () => (sink.unreadBytes?.() ?? 0) <= options.maxUnreadBytes,
      maxHoldMs: options.stuckMs,
      onStuck: () => {
        this.#error('CLIENT_NOT_READING', `the client took no audio for ${options.stuckMs} ms; the session ends`);
        this.end('error');
      },
    });
    this.#ended = new Promise((resolve) => (this.#resolveEnded = resolve));
    // Both listeners go when the session ends: `shutdown` lives as long as the worker.
    signal.addEventListener('abort', () => this.end('stopped'), { once: true, signal: this.#stop.signal });
    if (signal.aborted) queueMicrotask(() => this.end('stopped'));
    shutdown?.addEventListener(
      'abort',
      () => {
        // The worker is going away: warn the client, let the answer in progress finish, then end.
        this.#error('WORKER_SHUTTING_DOWN', `this worker is shutting down; the session ends in ${options.shutdownGraceMs} ms`);
        setTimeout(() => this.end('stopped'), options.shutdownGraceMs).unref();
      },
      { once: true, signal: this.#stop.signal },
    );
  }

  get voice(): string {
    return this.#settings.voice;
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
    this.#preemption.discard();
    this.#stop.abort();
    this.#pacer.dispose();
    this.#audioQueue.length = 0;
    this.#queuedSamples = 0;
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    if (this.#maxTimer) clearTimeout(this.#maxTimer);
    const summary: SessionSummary = {
      reason,
      turns: this.#turns,
      audioInSamples: this.#totals.audioInSamples,
      audioOutSamples: this.#pacer.sentSamples,
      llmTokensIn: this.#totals.llmTokensIn,
      llmTokensOut: this.#totals.llmTokensOut,
      llmTokensWasted: this.#preemption.wastedTokens,
      durationMs: Math.round(performance.now() - this.#started),
    };
    this.#sink.ended(summary);
    // The conversation is freed once the turn in progress (and any discarded preemptive answer) has let go of it.
    void Promise.allSettled([this.#turnChain, this.#preemption.idle]).then(() => this.#conversation.dispose());
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
    Object.assign(this.#settings, settings);
  }

  get settings(): Readonly<AnswerSettings> {
    return this.#settings;
  }

  get turnDetection(): Readonly<TurnDetection> {
    return this.#turnDetection;
  }

  /** The endpointer's effective options (the session's, with the turn detection's overrides). */
  get endpointerOptions(): Readonly<EndpointerOptions> {
    return this.#listener.endpointer.options;
  }

  /** Changes how turns are found; a new endpointer starts when its options change (speech in progress is dropped). */
  setTurnDetection(detection: TurnDetection): void {
    const vadChanged = JSON.stringify(detection.vad) !== JSON.stringify(this.#turnDetection.vad);
    this.#turnDetection = detection;
    if (vadChanged) this.#listener = this.#openListener();
    if (detection.mode === 'vad') this.clearAudio();
  }

  /** Client audio heard so far, in ms of audio (the clock that speech events are stamped with). */
  get heardMs(): number {
    return samplesToMs(this.#totals.audioInSamples);
  }

  /** An answer is being made or played. */
  get answering(): boolean {
    return this.#answer !== null;
  }

  /** The conversation as it stands, in order. */
  get items(): readonly Readonly<ConversationItem>[] {
    return this.#items.list;
  }

  #openListener(): TurnListener {
    this.#preemption.discard();
    const base = this.#listenedSamples;
    return new TurnListener(this.#engines.vad.openStream({ ...this.#options.vad, ...this.#turnDetection.vad }), this.#engines.asr, this.#stop.signal, {
      joinSegments: false,
      onSpeculation: (speculation) => {
        if (this.#mayPreempt()) this.#preemption.start(speculation.text);
      },
      captureTimeOf: (sample) => this.#clock.captureTimeOf(base + sample),
      partialIntervalMs: this.#options.partialTranscriptMs ?? 0,
      onPartial: (partial) => {
        if (!this.#endReason) this.#emit({ type: 'partial_transcript', turn: this.#turns, itemId: this.#speechItemId, text: partial.text });
      },
    });
  }

  /**
   * A preemptive answer may start only when it would be the next answer as it stands: turns are
   * answered automatically, nothing is playing or queued, and the history needs no rebuild.
   */
  #mayPreempt(): boolean {
    return (
      !this.#endReason &&
      this.#turnDetection.mode === 'vad' &&
      this.#turnDetection.createResponse &&
      this.#answer === null &&
      !this.#pacer.speaking &&
      this.#chained === 0 &&
      !this.#items.hasPendingInput &&
      !this.#items.historyDirty &&
      this.#bargeInAt === null
    );
  }

  /** The options an answer with these overrides is made with. */
  #responseOptions(request: AnswerRequest): Omit<ResponseOptions, 'signal'> {
    const settings = { ...this.#settings, ...request };
    return {
      voice: settings.voice,
      maxTokens: settings.maxTokens,
      temperature: settings.temperature,
      instructions: settings.instructions,
      speak: settings.speak !== false,
      tools: settings.tools,
      toolChoice: settings.toolChoice,
      cfg: this.#options.cfg,
      steps: this.#options.steps,
      chunker: this.#options.chunker,
    };
  }

  // ---- input ---------------------------------------------------------------------------------

  /**
   * 16 kHz PCM16 from the client, processed in order (the core keeps the array). `arrivedAt` is when
   * the frame arrived (performance.now()): the client is taken to send frames as it captures them.
   */
  pushAudio(pcm: Int16Array, arrivedAt = performance.now()): void {
    if (this.#endReason) return;
    if (this.#turnDetection.mode === 'manual') {
      // No endpointer: the audio waits for the client's commit, up to the longest turn the VAD would allow.
      const maxMs = this.#listener.endpointer.options.maxUtteranceMs;
      if (samplesToMs(this.#manualSamples + pcm.length) > maxMs) {
        this.#error('AUDIO_BUFFER_FULL', `the uncommitted audio would pass ${maxMs} ms (the longest turn); commit or clear it first; this audio was dropped`);
        return;
      }
      this.#totals.audioInSamples += pcm.length;
      this.#manualBuffer.push(pcm16ToFloat32(pcm));
      this.#manualSamples += pcm.length;
      return;
    }
    this.#clock.arrived(pcm.length, arrivedAt);
    this.#audioQueue.push(pcm);
    this.#queuedSamples += pcm.length;
    if (samplesToMs(this.#queuedSamples) > this.#options.maxBacklogMs) {
      // Faster than real time for long: memory would grow without limit.
      this.#error('AUDIO_BACKLOG', `more than ${this.#options.maxBacklogMs} ms of audio waiting to be processed; send audio at real-time speed`);
      this.end('error');
      return;
    }
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
    this.#queueTurn(newId('item'), Promise.resolve(typedTurn(text)), true, 'text');
  }

  /**
   * Adds a message the client wrote (user, system or assistant text) after `previousItemId`
   * (undefined: at the end; null: first). A user message at the end waits for the next answer.
   * Returns the item, or an error message when `previousItemId` is unknown or the id is taken.
   */
  addItem(item: { id?: string; role: ConversationItem['role']; text: string }, previousItemId?: string | null): ConversationItem | string {
    const added: ConversationItem = { id: item.id ?? newId('item'), role: item.role, modality: 'text', text: item.text, status: 'completed', audioMs: 0 };
    const placed = this.#items.addMessage(added, previousItemId);
    if (typeof placed === 'string') return placed;
    if (item.role === 'user') this.#turns++;
    this.#emit({ type: 'item_added', item: added, previousItemId: placed.previousItemId });
    return added;
  }

  /**
   * The output of a function call the assistant made, from the client (placed like `addItem`).
   * The next answer continues from it. Returns the item, or an error message when no call has
   * that id, it has an output already, or the item id is taken.
   */
  addFunctionOutput(output: { id?: string; callId: string; output: string }, previousItemId?: string | null): ConversationItem | string {
    const added = { id: output.id ?? newId('item'), role: 'user', modality: 'text', text: '', status: 'completed', audioMs: 0, functionOutput: { callId: output.callId, output: output.output } } satisfies ConversationItem;
    const placed = this.#items.addFunctionOutput(added, previousItemId);
    if (typeof placed === 'string') return placed;
    try {
      this.#conversation.addFunctionCallOutput(output.callId, output.output);
    } catch {
      // The model's history moved on without it (a turn came first, or it was rebuilt): rebuild it with the output.
      this.#items.markHistoryDirty();
    }
    this.#emit({ type: 'item_added', item: added, previousItemId: placed.previousItemId });
    return added;
  }

  /** Removes an item; false when there is none with that id. */
  deleteItem(id: string): boolean {
    return this.#items.delete(id);
  }

  /**
   * Cuts an assistant item to what was heard in its first `audioEndMs` of audio; the model's history
   * follows. Clamped to the audio that exists; returns the ms it was cut at, or null for no such item.
   */
  truncateItem(id: string, audioEndMs: number): number | null {
    return this.#items.truncate(id, audioEndMs);
  }

  /**
   * Closes the user's turn now (manual turn detection: the audio since the last commit; VAD: the
   * speech in progress). Returns the user item's id, or null when there is no audio to commit.
   */
  commitAudio(): string | null {
    if (this.#endReason) return null;
    if (this.#turnDetection.mode === 'vad') {
      const events = this.#listener.flush();
      const id = this.#speechItemId;
      for (const event of events) this.#onListen(event);
      return events.some((e) => e.type === 'turn') ? id : null;
    }
    if (this.#manualSamples === 0) return null;
    const audio = this.#manualBuffer;
    const samples = this.#manualSamples;
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
      const transcript = await this.#engines.asr.transcribe(joined, { signal: this.#stop.signal });
      const transcriptAt = performance.now();
      return { segments: [], transcript: transcript.text, vadMs: 0, endpointMs: 0, asrMs: transcript.asrMs, asrCriticalMs: transcriptAt - closedAt, asrSpeculative: false, closedAt, transcriptAt };
    })();
    this.#queueTurn(id, heard, false, 'audio');
    return id;
  }

  /** Drops the audio not yet committed (manual turn detection). */
  clearAudio(): void {
    this.#manualBuffer = [];
    this.#manualSamples = 0;
  }

  /** Feeds client audio through the listener, one frame at a time, in order. */
  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (this.#audioQueue.length > 0 && !this.#endReason) {
        const pcm = this.#audioQueue.shift()!;
        this.#queuedSamples -= pcm.length;
        this.#totals.audioInSamples += pcm.length;
        const listener = this.#listener;
        const events = await listener.push(pcm16ToFloat32(pcm));
        this.#listenedSamples += pcm.length;
        for (const event of events) this.#onListen(event);
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
      case 'speech_start': {
        // Speech again: the turn will not read as the speculative transcript did.
        this.#preemption.discard();
        const duringAnswer = this.#answer !== null || this.#pacer.speaking;
        this.#speechItemId = newId('item');
        this.#emit({ type: 'speech_start', atMs: samplesToMs(event.startSample), itemId: this.#speechItemId, duringAnswer });
        if (duringAnswer && this.#turnDetection.interruptResponse) {
          // The user may be interrupting: stop sending at once, judge when we know more.
          this.#bargeInAt = event.startSample;
          this.#pacer.pause();
          this.#emit({ type: 'paused', turn: this.#answer?.turn ?? this.#turns - 1 });
        }
        break;
      }
      case 'speech_end':
        this.#emit({ type: 'speech_end', startMs: samplesToMs(event.startSample), endMs: samplesToMs(event.endSample), itemId: this.#speechItemId });
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
        this.#queueTurn(this.#speechItemId, event.heard, this.#turnDetection.createResponse, 'audio');
        break;
      case 'speech_resumed':
        this.#preemption.discard();
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
    if (this.#answer) {
      this.#answer.cutBy = by;
      // What the listener has not heard yet (sent ahead, or held by a pause) is not part of the answer.
      const unplayed = Math.round((this.#pacer.unplayedMs * CORE_OUTPUT_SAMPLE_RATE) / 1000);
      this.#items.cutToHeard(this.#answer.item, Math.max(0, this.#answer.sentSamples - unplayed));
    }
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
    const id = newId('resp');
    this.#chain(() => this.#runAnswer(id, this.#turns - 1, request));
    return id;
  }

  /**
   * Withdraws an answer asked for with `requestAnswer` that has not started (it waits behind a
   * turn or another answer): it never starts, emits nothing and leaves the user input for the next.
   */
  withdrawAnswer(id: string): void {
    this.#withdrawn.add(id);
  }

  /** Cuts the answer in progress (the client asked); false when there is none. */
  cancelAnswer(): boolean {
    if (!this.#answer) return false;
    this.#cut('cancelled');
    return true;
  }

  /** Runs `step` after everything queued before it: turns and answers happen one after another. */
  #chain(step: () => Promise<void>): void {
    this.#chained++;
    this.#turnChain = this.#turnChain
      .then(step)
      .catch((error: unknown) => {
        this.#log.error('session turn failed', { error: errorMessage(error) });
        this.#error('TURN_FAILED', errorMessage(error));
      })
      .finally(() => this.#chained--);
  }

  /** A user turn: its item joins the conversation now, its text when heard; with `answer`, it is answered right away. */
  #queueTurn(itemId: string, heard: Promise<HeardTurn>, answer: boolean, modality: ConversationItem['modality']): void {
    const turn = this.#turns++;
    // A session that ends first never awaits it: its failure (an aborted decode) must not go unhandled.
    heard.catch(() => undefined);
    const item: ConversationItem = { id: itemId, role: 'user', modality, text: null, status: 'completed', audioMs: 0 };
    const { previousItemId } = this.#items.addUserTurn(item);
    this.#emit({ type: 'item_added', item, previousItemId });
    this.#chain(async () => {
      if (this.#endReason) return;
      let heardTurn: HeardTurn;
      try {
        heardTurn = await heard;
      } catch (error) {
        item.text = '';
        throw error;
      }
      if (this.#endReason) return;
      item.text = heardTurn.transcript;
      this.#emit({ type: 'transcript', turn, itemId, text: heardTurn.transcript, spoken: modality === 'audio', asrMs: heardTurn.asrMs });
      if (!heardTurn.transcript) {
        await this.#preemption.drop();
        return;
      }
      this.#lastHeard = heardTurn;
      if (answer) await this.#runAnswer(newId('resp'), turn, {});
    });
  }

  /** Rebuilds the model's history from the items when a client edited it; returns the text of the turns to answer. */
  #takePendingInput(): string {
    const { text, rebuiltHistory } = this.#items.takePendingInput();
    if (rebuiltHistory) this.#conversation.restore(rebuiltHistory);
    return text;
  }

  /** The whole life of one answer: start, stream, pace, finish or cut, account. Nothing else starts or ends one. */
  async #runAnswer(id: string, turn: number, request: AnswerRequest): Promise<void> {
    if (this.#withdrawn.delete(id) || this.#endReason) return;
    const settings = { ...this.#settings, ...request };
    const speak = settings.speak !== false;
    const userText = this.#takePendingInput();
    const heard = this.#lastHeard ?? typedTurn(userText);
    this.#lastHeard = null;
    const item: ConversationItem = { id: newId('item'), role: 'assistant', modality: speak ? 'audio' : 'text', text: '', status: 'in_progress', audioMs: 0 };
    // The answer's items follow what it answers (the last item now), in the order they appear.
    let lastOwnItemId = this.#items.list.at(-1)?.id ?? null;
    const place = (own: ConversationItem): string | null => {
      const { previousItemId } = this.#items.placeAfter(own, lastOwnItemId);
      lastOwnItemId = own.id;
      return previousItemId;
    };
    // The message joins only once there is something to show: an answer that only calls a
    // function has none (as on OpenAI's server); text held back until then is whitespace.
    let joined = false;
    let madeCall = false;
    let heldText = '';
    const join = () => {
      if (joined) return;
      joined = true;
      const previousItemId = place(item);
      if (speak) this.#items.startSpeech(item);
      // Shown empty: every word of it follows in answer_text, so a client can add the deltas up.
      this.#emit({ type: 'answer_message', turn, answerId: id, item: { ...item, text: '' }, previousItemId });
    };
    const sayText = (delta: string) => {
      heldText += delta;
      if (!joined && heldText.trim() === '') return;
      join();
      this.#emit({ type: 'answer_text', turn, answerId: id, itemId: item.id, delta: heldText });
      heldText = '';
    };
    const abort = new AbortController();
    const answer: ActiveAnswer = { id, turn, item, abort, firstOutAt: null, sentSamples: 0, cutBy: null };
    this.#answer = answer;
    const signal = AbortSignal.any([abort.signal, this.#stop.signal]);
    let response: Response;
    let preemption: { preemptive: PreemptiveOutcome; wastedTokens: number } = { preemptive: false, wastedTokens: 0 };
    if (Object.keys(request).length === 0) {
      // The answer held since the endpoint wait when it was started on this very text, else a new one.
      const taken = await this.#preemption.take(userText, signal);
      response = taken.response;
      preemption = { preemptive: taken.preemptive, wastedTokens: taken.wastedTokens };
    } else {
      await this.#preemption.drop();
      response = respond(this.#conversation, this.#engines.tts, userText, { ...this.#responseOptions(request), signal });
    }
    this.#emit({ type: 'answer_start', turn, answerId: id, speak });
    let failure: unknown = null;
    let generated = '';
    try {
      for await (const chunk of response.items) {
        if (signal.aborted) break;
        if (chunk.kind === 'text') {
          generated += chunk.delta;
          if (answer.cutBy === null) item.text = generated;
          sayText(chunk.delta);
        } else if (chunk.kind === 'function_call') {
          madeCall = true;
          const call: ConversationItem = {
            id: newId('item'),
            role: 'assistant',
            modality: 'text',
            text: '',
            status: 'completed',
            audioMs: 0,
            functionCall: { callId: chunk.callId, name: chunk.name, arguments: chunk.arguments },
          };
          const previousItemId = place(call);
          this.#emit({ type: 'function_call', turn, answerId: id, item: { ...call }, previousItemId });
        } else {
          join();
          this.#items.addSpeech(item, chunk.piece, response.timings.pieces[chunk.piece]?.text ?? '', chunk.pcm.length);
          this.#pacer.enqueue(chunk.pcm);
        }
      }
      if (!signal.aborted) await this.#pacer.drained();
    } catch (error) {
      failure = error;
    } finally {
      if (this.#answer === answer) this.#answer = null;
    }
    // An answer that said nothing and called nothing (cut before its first token, or empty) still
    // has its message, as it always had: the client sees the response's one item close.
    if (!joined && !madeCall) {
      join();
      if (heldText) sayText('');
    }
    // A cut answer's LLM reply may still hold the conversation for a token: the next turn waits.
    await response.done;
    const metrics = turnMetrics(heard, response.timings, answer.firstOutAt, signal.aborted, 0, preemption);
    this.#totals.llmTokensIn += metrics.llm_tokens_in;
    this.#totals.llmTokensOut += metrics.llm_tokens_out;
    if (failure !== null || signal.aborted) {
      // The model's history holds what it generated; the item holds what was heard.
      this.#items.markHistoryDirty();
      item.status = 'incomplete';
    } else {
      item.status = 'completed';
    }
    if (failure !== null) {
      this.#log.error('session answer failed', { error: errorMessage(failure) });
      this.#emit({ type: 'answer_done', turn, answerId: id, item: { ...item }, status: 'failed', error: errorMessage(failure), metrics });
      return;
    }
    const status = !signal.aborted ? 'completed' : (answer.cutBy ?? 'cancelled');
    this.#emit({ type: 'answer_done', turn, answerId: id, item: { ...item }, status, error: null, metrics });
  }

  // ---- output --------------------------------------------------------------------------------

  #emit(event: CoreEvent): void {
    this.#sink.event(event);
  }

  /** Called by the pacer for each chunk as it leaves: the audio in it belongs to the current answer. */
  #sendAudio(pcm: Int16Array): void {
    if (this.#answer) {
      this.#answer.firstOutAt ??= performance.now();
      this.#answer.sentSamples += pcm.length;
    }
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
