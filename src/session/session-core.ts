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
 * This class only wires the parts, each the one owner of its facts:
 * - `TurnTaking` (turn-taking.ts): audio in, the listener and endpointer, barge-in judging, the
 *   session's audio clock;
 * - `Answers` (answers.ts): the chain of turns and answers, the output pacer, the preemptive
 *   answer; each answer an `Answer` (answer.ts);
 * - `ConversationItems` (conversation-items.ts): the conversation's items (what the client sees,
 *   what a cut or truncation keeps, when the model's history must be rebuilt);
 * - `SessionDeadlines` (session-deadlines.ts): what ends the session unasked (idle, max duration,
 *   the worker's stop and shutdown);
 * - here: the session's settings, its turn count and its end.
 * The contract with adapters (options, events, sink, summary) is in core-types.ts.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../log/logger.js';
import type { Conversation } from '../llm/llm.js';
import type { Engines } from '../pipeline/engines.js';
import type { HeardTurn } from '../pipeline/listen.js';
import type { ResponseOptions } from '../pipeline/respond.js';
import { samplesToMs, type EndpointerOptions } from '../vad/endpointer.js';
import { Answers, typedTurn } from './answers.js';
import { ConversationItems, type ConversationItem } from './conversation-items.js';
import {
  CORE_OUTPUT_SAMPLE_RATE,
  type AnswerRequest,
  type AnswerSettings,
  type CoreEvent,
  type ItemRefused,
  type CutReason,
  type SessionCoreOptions,
  type SessionEndReason,
  type SessionSink,
  type SessionSummary,
  type TurnDetection,
} from './core-types.js';
import { newId } from './ids.js';
import { SessionDeadlines } from './session-deadlines.js';
import { TurnTaking } from './turn-taking.js';

export type { ConversationItem } from './conversation-items.js';
// The core's contract lives in core-types.ts; it is re-exported here so adapters import one module.
export * from './core-types.js';

export class SessionCore {
  readonly id = randomUUID();
  readonly #engines: Engines;
  readonly #conversation: Conversation;
  readonly #options: SessionCoreOptions;
  readonly #settings: AnswerSettings;
  readonly #log: Logger;
  readonly #sink: SessionSink;
  readonly #stop = new AbortController();
  /** The user's side: audio in, turns, barge-in, the audio clock. */
  readonly #input: TurnTaking;
  /** The assistant's side: the chain of turns and answers, output, preemption. */
  readonly #answers: Answers;
  readonly #items: ConversationItems;
  /** User turns so far (typed, spoken or added): an answer carries the number of the turn it answers. */
  #turns = 0;
  /** Idle, max duration, the worker's stop and shutdown: what ends the session unasked. */
  readonly #deadlines: SessionDeadlines;
  readonly #started = performance.now();
  #endReason: SessionEndReason | null = null;
  readonly #ended: { promise: Promise<SessionSummary>; resolve: (summary: SessionSummary) => void };

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
    // A history the session was opened with is part of the conversation (and of any rebuild of it).
    this.#items = new ConversationItems(conversation.history, CORE_OUTPUT_SAMPLE_RATE);
    this.#answers = new Answers({
      conversation,
      tts: engines.tts,
      items: this.#items,
      log,
      signal: this.#stop.signal,
      emit: (event) => this.#emit(event),
      responseOptions: (request) => this.#responseOptions(request),
      ended: () => this.#endReason !== null,
      preemption: options.preemption ?? 'full',
      mayPreempt: () => engines.scheduler?.mayPreempt() ?? true,
      outputLeadMs: options.outputLeadMs,
      canSend: () => (sink.unreadBytes?.() ?? 0) <= options.maxUnreadBytes,
      stuckMs: options.stuckMs,
      onStuck: () => {
        this.#error('CLIENT_NOT_READING', `the client took no audio for ${options.stuckMs} ms; the session ends`);
        this.end('error');
      },
      audio: (pcm) => sink.audio(pcm),
    });
    this.#input = new TurnTaking(
      {
        sessionId: this.id,
        ended: () => this.#endReason !== null,
        assistantSpeaking: () => this.#answers.speaking,
        answerResumable: () => this.#answers.resumable,
        nextTurn: () => this.#turns,
        emit: (event) => this.#emit(event),
        discardSpeculation: () => this.#answers.discardSpeculation(),
        speculate: (text) => {
          if (this.#mayPreempt()) this.#answers.speculate(text);
        },
        pauseAnswer: () => {
          this.#answers.pauseOutput();
          this.#emit({ type: 'paused', turn: this.#answerTurn() });
        },
        holdOutput: () => this.#answers.pauseOutput(),
        releaseOutput: () => this.#answers.resumeOutput(),
        resumeAnswer: () => {
          this.#answers.resumeOutput();
          this.#emit({ type: 'resumed', turn: this.#answerTurn() });
        },
        interrupt: () => this.#interruptIfSpeaking(),
        turn: (itemId, heard, answer) => this.#queueTurn(itemId, heard, answer, 'audio'),
        fail: (code, message, end) => {
          this.#error(code, message);
          if (end) this.end('error');
        },
      },
      engines,
      options,
      log,
      this.#stop.signal,
    );
    let resolve!: (summary: SessionSummary) => void;
    this.#ended = { promise: new Promise((r) => (resolve = r)), resolve };
    this.#deadlines = new SessionDeadlines(
      options,
      {
        end: (reason) => this.end(reason),
        answerPlaying: () => this.#answers.speaking,
        shuttingDown: (graceMs) => this.#error('WORKER_SHUTTING_DOWN', `this worker is shutting down; the session ends in ${graceMs} ms`),
      },
      this.#stop.signal,
      signal,
      shutdown,
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
    this.#deadlines.start();
    this.#log.info('session started', { session_id: this.id });
    return this.#ended.promise;
  }

  /** Ends the session: cuts the answer in progress, tells the sink, frees the conversation. */
  end(reason: SessionEndReason): void {
    if (this.#endReason) return;
    this.#endReason = reason;
    this.#answers.abort();
    this.#stop.abort();
    this.#answers.dispose();
    this.#input.dispose();
    this.#deadlines.clear();
    const summary: SessionSummary = {
      reason,
      turns: this.#turns,
      audioInSamples: this.#input.heardSamples,
      audioOutSamples: this.#answers.sentSamples,
      llmTokensIn: this.#answers.tokens.llmTokensIn,
      llmTokensOut: this.#answers.tokens.llmTokensOut,
      llmTokensWasted: this.#answers.wastedTokens,
      durationMs: Math.round(performance.now() - this.#started),
    };
    this.#sink.ended(summary);
    // The conversation is freed once the turn in progress (and any discarded preemptive answer) has let go of it.
    void this.#answers.settled.then(() => {
      this.#conversation.dispose();
      this.#items.clear();
    });
    this.#log.info('session ended', { session_id: this.id, reason, turns: summary.turns });
    this.#ended.resolve(summary);
  }

  /** The client is there: the idle clock restarts (it never runs out while an answer is playing). */
  touch(): void {
    if (this.#endReason) return;
    this.#deadlines.touch();
  }

  /** Changes settings for the answers that follow. */
  configure(settings: Partial<AnswerSettings>): void {
    Object.assign(this.#settings, settings);
  }

  get settings(): Readonly<AnswerSettings> {
    return this.#settings;
  }

  get turnDetection(): Readonly<TurnDetection> {
    return this.#input.detection;
  }

  /** The endpointer's effective options (the session's, with the turn detection's overrides). */
  get endpointerOptions(): Readonly<EndpointerOptions> {
    return this.#input.endpointerOptions;
  }

  /** Changes how turns are found; what was heard is kept (see `TurnTaking.setDetection`). */
  setTurnDetection(detection: TurnDetection): void {
    this.#input.setDetection(detection);
  }

  /** Audio sent ahead of playback from now on (a telephony client wants less: it cannot drop what it holds). */
  setOutputLeadMs(ms: number): void {
    this.#answers.setOutputLeadMs(ms);
  }

  /** Client audio heard so far, in ms of audio (the clock that speech events are stamped with). */
  get heardMs(): number {
    return samplesToMs(this.#input.heardSamples);
  }

  /**
   * An answer is running or one asked for with `requestAnswer` waits to start (an automatic answer
   * to a turn that has not started is not counted: `requestAnswer` takes its place).
   */
  get answering(): boolean {
    return this.#answers.answering;
  }

  /** The conversation as it stands, in order. */
  get items(): readonly Readonly<ConversationItem>[] {
    return this.#items.list;
  }

  /**
   * A preemptive answer may start only when it would be the next answer as it stands: turns are
   * answered automatically, nothing is playing or queued, and the history needs no rebuild.
   */
  #mayPreempt(): boolean {
    const detection = this.#input.detection;
    return (
      !this.#endReason &&
      detection.mode === 'vad' &&
      detection.createResponse &&
      this.#answers.idle &&
      !this.#items.hasPendingInput &&
      !this.#items.historyDirty &&
      !this.#input.bargeInPending
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
    };
  }

  // ---- input ---------------------------------------------------------------------------------

  /**
   * 16 kHz PCM16 from the client, processed in order (the core keeps the array). `arrivedAt` is when
   * the frame arrived (performance.now()): the client is taken to send frames as it captures them.
   */
  pushAudio(pcm: Int16Array, arrivedAt = performance.now()): void {
    if (this.#endReason) return;
    this.#input.push(pcm, arrivedAt);
  }

  /** A typed user turn: it cuts an answer that is playing and is answered next. Refused (an error event) when the conversation is full. */
  submitText(text: string): void {
    if (this.#endReason) return;
    const full = this.#items.refusal(text.length, this.#options);
    if (full) return this.#error(full.refused.toUpperCase(), full.message);
    this.#interruptIfSpeaking();
    this.#queueTurn(newId('item'), Promise.resolve(typedTurn(text)), true, 'text');
  }
  /**
   * Adds a message the client wrote (user, system or assistant text) after `previousItemId`
   * (undefined: at the end; null: first). A user message at the end waits for the next answer.
   * Returns the item, or an error message when `previousItemId` is unknown or the id is taken, or
   * `ItemRefused` when the conversation is at its size limit or the text is too long.
   */
  addItem(item: { id?: string; role: ConversationItem['role']; text: string }, previousItemId?: string | null): ConversationItem | string | ItemRefused {
    const full = this.#items.refusal(item.text.length, this.#options);
    if (full) return full;
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
   * that id, it has an output already, or the item id is taken; `ItemRefused` as for `addItem`.
   */
  addFunctionOutput(output: { id?: string; callId: string; output: string }, previousItemId?: string | null): ConversationItem | string | ItemRefused {
    const full = this.#items.refusal(output.output.length, this.#options);
    if (full) return full;
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
    return this.#input.commit();
  }

  /** Drops the audio not yet committed, whatever the turn detection (the speech in progress too). */
  clearAudio(): void {
    if (this.#endReason) return;
    this.#input.clearAudio();
  }

  #interruptIfSpeaking(): void {
    if (!this.#answers.speaking) return;
    this.#cut('interrupted');
  }

  /** Stops the answer in progress at once: generation, synthesis and the audio not yet sent. */
  #cut(by: CutReason): void {
    const turn = this.#answerTurn();
    this.#answers.cut(by);
    this.#emit({ type: 'interrupted', turn, by });
  }

  /** The turn the answer in progress (or the last one) answers. */
  #answerTurn(): number {
    return this.#answers.current?.turn ?? this.#turns - 1;
  }

  // ---- answers -------------------------------------------------------------------------------

  /**
   * Asks for an answer to the user turns not answered yet (protocols with manual turns). It waits
   * for the turn in progress, like every answer. Returns the answer's id.
   */
  requestAnswer(request: AnswerRequest = {}): string {
    const id = newId('resp');
    this.#answers.request(id, this.#turns - 1, request);
    return id;
  }

  /**
   * Withdraws an answer asked for with `requestAnswer` that has not started (it waits behind a
   * turn or another answer): it never starts, emits nothing and leaves the user input for the next.
   */
  withdrawAnswer(id: string): void {
    this.#answers.withdraw(id);
  }

  /** Cuts the answer in progress (the client asked); false when there is none. */
  cancelAnswer(): boolean {
    if (!this.#answers.current) return false;
    this.#cut('cancelled');
    return true;
  }

  /** A user turn: its item joins the conversation now, its text when heard; with `answer`, it is answered right away. */
  #queueTurn(itemId: string, heard: Promise<HeardTurn>, answer: boolean, modality: ConversationItem['modality']): void {
    // A session that ends first never awaits it: its failure (an aborted decode) must not go unhandled.
    heard.catch(() => undefined);
    const full = this.#items.refusal(0, this.#options);
    if (full) return this.#error('CONVERSATION_FULL', `this turn was dropped: ${full.message}`);
    const turn = this.#turns++;
    const item: ConversationItem = { id: itemId, role: 'user', modality, text: null, status: 'completed', audioMs: 0 };
    const { previousItemId } = this.#items.addUserTurn(item);
    this.#emit({ type: 'item_added', item, previousItemId });
    this.#answers.afterTurn(turn, item, heard, answer);
  }

  // ---- output --------------------------------------------------------------------------------

  #emit(event: CoreEvent): void {
    this.#sink.event(event);
  }

  #error(code: string, message: string): void {
    this.#emit({ type: 'error', code, message });
  }
}
