/**
 * Preemptive response: answer during the endpoint wait. When the speculative transcript is ready
 * and speech has not resumed, the response (LLM, and TTS unless `llm` only) starts on it at once,
 * its TTS stream opened `speculative` (the TTS server serves confirmed streams first); its text and
 * audio are held (not read) until the turn is confirmed, and the stream is then promoted. If speech resumes, or the
 * confirmed transcript differs, the held response is aborted, its tokens are counted as wasted, and
 * the conversation is rolled back to before it, so it leaves no trace in the history. The settings
 * it was made with are checked again when it is taken: settings changed meanwhile (tools, voice,
 * text only, instructions...) throw it away as a different transcript would. Used by turn
 * jobs and live sessions alike.
 */
import type { Conversation } from '../llm/llm.js';
import type { Tts } from '../tts/tts.js';
import { WorkPriority } from '../util/work-priority.js';
import { respond, type Response, type ResponseOptions } from './respond.js';

/** full: LLM and TTS start early; llm: only the LLM (TTS waits for the confirmed turn); off: nothing starts early. */
export type PreemptionMode = 'full' | 'llm' | 'off';

/** Per turn: the played answer was the preemptive one (true), none was started early (false), or one was thrown away. */
export type PreemptiveOutcome = boolean | 'discarded';

export interface TakenResponse {
  response: Response;
  preemptive: PreemptiveOutcome;
  /** LLM tokens (prompt + generated) of responses discarded during this turn. */
  wastedTokens: number;
}

interface Held {
  text: string;
  abort: AbortController;
  /** Speculative until the turn is confirmed on its text. */
  priority: WorkPriority;
  /** Releases an `llm`-only response's TTS. */
  confirm: () => void;
  /** Null when it was discarded before it could start. */
  started: Promise<{ response: Response; historyLength: number; options: Omit<ResponseOptions, 'signal'> } | null>;
}

/** Two responses' settings are the same: values equal, plain objects equal by content, anything else (a tool set) the same object. */
export function sameResponseOptions(a: Omit<ResponseOptions, 'signal'>, b: Omit<ResponseOptions, 'signal'>): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)] as (keyof typeof a)[]);
  for (const key of keys) {
    const [x, y] = [a[key], b[key]];
    if (Object.is(x, y)) continue;
    const plain = (v: unknown) => typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype;
    if (!plain(x) || !plain(y) || JSON.stringify(x) !== JSON.stringify(y)) return false;
  }
  return true;
}

export class PreemptiveResponder {
  readonly #conversation: Conversation;
  readonly #tts: Tts;
  readonly #mode: PreemptionMode;
  readonly #options: () => Omit<ResponseOptions, 'signal'>;
  readonly #signal: AbortSignal;
  readonly #mayStart: () => boolean;
  #held: Held | null = null;
  /** Settles once every discarded response has stopped and been rolled back: the conversation is free. */
  #idle: Promise<void> = Promise.resolve();
  #discardedThisTurn = 0;
  #wastedThisTurn = 0;
  /** Tokens of every discarded response so far (never billed). */
  wastedTokens = 0;

  /**
   * `options` is read when a response starts, so session settings changed meanwhile apply.
   * `mayStart` is the worker's back-off rule (Scheduler.mayPreempt): under load no answer starts early.
   */
  constructor(conversation: Conversation, tts: Tts, mode: PreemptionMode, options: () => Omit<ResponseOptions, 'signal'>, signal: AbortSignal, mayStart: () => boolean = () => true) {
    this.#conversation = conversation;
    this.#tts = tts;
    this.#mode = mode;
    this.#options = options;
    this.#signal = signal;
    this.#mayStart = mayStart;
  }

  get mode(): PreemptionMode {
    return this.#mode;
  }

  /** Settles once every discarded answer has stopped and been rolled back. */
  get idle(): Promise<void> {
    return this.#idle;
  }

  /** The speculative transcript is ready and speech has not resumed: start answering it, held. */
  start(text: string): void {
    if (this.#mode === 'off' || !text.trim() || this.#signal.aborted) return;
    if (this.#held?.text === text) return;
    this.discard();
    if (!this.#mayStart()) return;
    const abort = new AbortController();
    let confirm!: () => void;
    const confirmed = new Promise<void>((resolve) => (confirm = resolve));
    const priority = new WorkPriority('speculative');
    const started = this.#idle.then(() => {
      if (abort.signal.aborted) return null;
      const historyLength = this.#conversation.history.length;
      const options = this.#options();
      const response = respond(this.#conversation, this.#tts, text, {
        ...options,
        priority,
        signal: AbortSignal.any([abort.signal, this.#signal]),
        // llm: the TTS opens once the turn is confirmed, as a confirmed stream.
        ...(this.#mode === 'llm' && { speakAfter: confirmed }),
      });
      return { response, historyLength, options };
    });
    this.#held = { text, abort, priority, confirm, started };
  }

  /** Speech resumed (or the turn turned out different): throw the held response away, without a trace. */
  discard(): void {
    const held = this.#held;
    if (!held) return;
    this.#held = null;
    this.#throwAway(held);
  }

  #throwAway(held: Held): void {
    this.#discardedThisTurn++;
    held.abort.abort();
    held.confirm();
    this.#idle = held.started
      .then(async (started) => {
        if (!started) return;
        await started.response.done;
        const stats = started.response.timings.llm;
        const wasted = (stats?.inputTokens ?? 0) + (stats?.outputTokens ?? 0);
        this.#wastedThisTurn += wasted;
        this.wastedTokens += wasted;
        // Back to the history before it; the engine's cache keeps the common prefix.
        this.#conversation.restore(this.#conversation.history.slice(0, started.historyLength));
      })
      .catch(() => undefined);
  }

  /**
   * The turn is confirmed with transcript `text`: the response to play. The held one when it was
   * started on the same text (its held output is then read from the start); otherwise a new one,
   * started once anything discarded has let go of the conversation. The held one is used only if
   * the settings it was made with are still those in force. `signal` stops the result.
   */
  async take(text: string, signal: AbortSignal): Promise<TakenResponse> {
    const held = this.#held;
    let response: Response | null = null;
    if (held && held.text === text) {
      this.#held = null;
      const started = await held.started;
      if (started && !sameResponseOptions(started.options, this.#options())) {
        // The session's settings changed while it waited: it is not the answer asked for now.
        this.#throwAway(held);
      } else if (started) {
        signal.addEventListener('abort', () => held.abort.abort(signal.reason), { once: true });
        if (signal.aborted) held.abort.abort(signal.reason);
        held.priority.promote();
        held.confirm();
        started.response.promote();
        response = started.response;
      }
    }
    const preemptive: PreemptiveOutcome = response !== null ? true : this.#discardedThisTurn > 0 || this.#held !== null ? 'discarded' : false;
    if (response === null) {
      this.discard();
      await this.#idle;
      response = respond(this.#conversation, this.#tts, text, { ...this.#options(), signal });
    }
    await this.#idle;
    const taken = { response, preemptive, wastedTokens: this.#wastedThisTurn };
    this.#discardedThisTurn = 0;
    this.#wastedThisTurn = 0;
    return taken;
  }

  /** A turn ended without an answer (no words): anything held is discarded; resolves when it is gone. */
  async drop(): Promise<number> {
    this.discard();
    await this.#idle;
    const wasted = this.#wastedThisTurn;
    this.#discardedThisTurn = 0;
    this.#wastedThisTurn = 0;
    return wasted;
  }
}
