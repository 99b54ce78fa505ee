/**
 * One answer, from start to its end: it takes its response (the preemptive one held since the
 * endpoint wait, or a new one), streams its text, calls and audio into the conversation's items
 * and the output pacer, can be cut (keeping only what the listener heard), and accounts for
 * itself in `answer_done`. Nothing else starts or ends an answer; `Answers` (answers.ts) runs them
 * one after another.
 */
import { errorMessage, type Logger } from '../log/logger.js';
import type { Conversation } from '../llm/llm.js';
import type { HeardTurn } from '../pipeline/listen.js';
import { turnMetrics } from '../pipeline/metrics.js';
import type { PreemptiveOutcome, PreemptiveResponder } from '../pipeline/preemptive.js';
import { respond, type Response, type ResponseOptions } from '../pipeline/respond.js';
import type { Tts } from '../tts/tts.js';
import { CORE_OUTPUT_SAMPLE_RATE, type AnswerRequest, type CoreEvent, type CutReason } from './core-types.js';
import type { ConversationItem, ConversationItems } from './conversation-items.js';
import { newId } from './ids.js';
import type { OutputPacer } from './output-pacer.js';

/** What an answer works with: the session's conversation, engines and output, shared by all its answers. */
export interface AnswerContext {
  conversation: Conversation;
  tts: Tts;
  items: ConversationItems;
  pacer: OutputPacer;
  preemption: PreemptiveResponder;
  log: Logger;
  /** The session's stop signal: it ends every answer. */
  signal: AbortSignal;
  emit(event: CoreEvent): void;
  /** The options an answer with these overrides is made with. */
  responseOptions(request: AnswerRequest): Omit<ResponseOptions, 'signal'>;
  /** Adds an answer's LLM tokens to the session's bill (before its `answer_done`). */
  account(llmTokensIn: number, llmTokensOut: number): void;
}

export class Answer {
  readonly id: string;
  readonly turn: number;
  readonly #speak: boolean;
  readonly #ctx: AnswerContext;
  /** The answer's assistant message. */
  readonly #item: ConversationItem;
  readonly #abort = new AbortController();
  #cutBy: CutReason | null = null;
  /** When the answer's first audio left for the client (set where audio is sent, paused or not). */
  #firstOutAt: number | null = null;
  /** Samples of this answer that have left for the client. */
  #sentSamples = 0;
  /** The answer's items follow what it answers (the last item when it starts), in the order they appear. */
  #lastOwnItemId: string | null;
  /** The message has joined the conversation (it joins at its first words, or at the end). */
  #joined = false;
  #madeCall = false;
  /** Text held back until the message joins (whitespace before its first word). */
  #heldText = '';
  /** Its response is still coming (more output may follow). */
  #producing = true;

  constructor(id: string, turn: number, speak: boolean, ctx: AnswerContext) {
    this.id = id;
    this.turn = turn;
    this.#speak = speak;
    this.#ctx = ctx;
    this.#item = { id: newId('item'), role: 'assistant', modality: speak ? 'audio' : 'text', text: '', status: 'in_progress', audioMs: 0 };
    this.#lastOwnItemId = ctx.items.list.at(-1)?.id ?? null;
  }

  /**
   * Runs the answer to `userText` (heard as `heard`) with `request`'s overrides; `finishedOutput`
   * is called once its output is over (sent and played, cut or failed), before it is accounted.
   */
  async run(request: AnswerRequest, userText: string, heard: HeardTurn, finishedOutput: () => void): Promise<void> {
    const { conversation, tts, items, pacer, preemption: preemptive } = this.#ctx;
    const { id, turn } = this;
    const item = this.#item;
    const signal = AbortSignal.any([this.#abort.signal, this.#ctx.signal]);
    let response: Response;
    let preemption: { preemptive: PreemptiveOutcome; wastedTokens: number } = { preemptive: false, wastedTokens: 0 };
    if (Object.keys(request).length === 0) {
      // The answer held since the endpoint wait when it was started on this very text, else a new one.
      const taken = await preemptive.take(userText, signal);
      response = taken.response;
      preemption = { preemptive: taken.preemptive, wastedTokens: taken.wastedTokens };
    } else {
      await preemptive.drop();
      response = respond(conversation, tts, userText, { ...this.#ctx.responseOptions(request), signal });
    }
    this.#ctx.emit({ type: 'answer_start', turn, answerId: id, speak: this.#speak });
    let failure: unknown = null;
    let generated = '';
    try {
      for await (const chunk of response.items) {
        if (signal.aborted) break;
        if (chunk.kind === 'text') {
          generated += chunk.delta;
          if (this.#cutBy === null) item.text = generated;
          this.#sayText(chunk.delta);
        } else if (chunk.kind === 'function_call') {
          this.#madeCall = true;
          const call: ConversationItem = {
            id: newId('item'),
            role: 'assistant',
            modality: 'text',
            text: '',
            status: 'completed',
            audioMs: 0,
            functionCall: { callId: chunk.callId, name: chunk.name, arguments: chunk.arguments },
          };
          const previousItemId = this.#place(call);
          this.#ctx.emit({ type: 'function_call', turn, answerId: id, item: { ...call }, previousItemId });
        } else {
          this.#join();
          // The words are the model's (digits, not the TTS's "five dollars"): what the history keeps.
          items.addSpeech(item, generated, chunk.pcm.length);
          pacer.enqueue(chunk.pcm);
        }
      }
      // All of it is queued: what is left to resume is what the pacer holds.
      this.#producing = false;
      if (!signal.aborted) await pacer.drained();
    } catch (error) {
      failure = error;
    } finally {
      this.#producing = false;
      finishedOutput();
    }
    // An answer that said nothing and called nothing (cut before its first token, or empty) still
    // has its message, as it always had: the client sees the response's one item close.
    if (!this.#joined && !this.#madeCall) {
      this.#join();
      if (this.#heldText) this.#sayText('');
    }
    // A cut answer's LLM reply may still hold the conversation for a token: the next turn waits.
    await response.done;
    const metrics = turnMetrics(heard, response.timings, this.#firstOutAt, signal.aborted, 0, preemption);
    this.#ctx.account(metrics.llm_tokens_in, metrics.llm_tokens_out);
    if (failure !== null || signal.aborted) {
      // The model's history holds what it generated; the item holds what was heard.
      items.markHistoryDirty();
      item.status = 'incomplete';
    } else {
      item.status = 'completed';
    }
    if (failure !== null) {
      this.#ctx.log.error('session answer failed', { error: errorMessage(failure) });
      this.#ctx.emit({ type: 'answer_done', turn, answerId: id, item: { ...item }, status: 'failed', error: errorMessage(failure), metrics });
      return;
    }
    const status = !signal.aborted ? 'completed' : (this.#cutBy ?? 'cancelled');
    this.#ctx.emit({ type: 'answer_done', turn, answerId: id, item: { ...item }, status, error: null, metrics });
  }

  /** Its response is still coming: more output may follow what was sent. */
  get producing(): boolean {
    return this.#producing;
  }

  /** Cuts the answer: its message keeps what the listener has heard, its work stops. */
  cut(by: CutReason): void {
    this.#cutBy = by;
    // What the listener has not heard yet (sent ahead, or held by a pause) is not part of the answer.
    const unplayed = Math.round((this.#ctx.pacer.unplayedMs * CORE_OUTPUT_SAMPLE_RATE) / 1000);
    this.#ctx.items.cutToHeard(this.#item, Math.max(0, this.#sentSamples - unplayed));
    this.#abort.abort();
  }

  /** Stops the answer's work (the session ended). */
  abort(): void {
    this.#abort.abort();
  }

  /** Audio of this answer left for the client. */
  sent(samples: number): void {
    this.#firstOutAt ??= performance.now();
    this.#sentSamples += samples;
  }

  #place(own: ConversationItem): string | null {
    const { previousItemId } = this.#ctx.items.placeAfter(own, this.#lastOwnItemId);
    this.#lastOwnItemId = own.id;
    return previousItemId;
  }

  /**
   * The message joins only once there is something to show: an answer that only calls a function
   * has none (as on OpenAI's server); text held back until then is whitespace.
   */
  #join(): void {
    if (this.#joined) return;
    this.#joined = true;
    const previousItemId = this.#place(this.#item);
    if (this.#speak) this.#ctx.items.startSpeech(this.#item);
    // Shown empty: every word of it follows in answer_text, so a client can add the deltas up.
    this.#ctx.emit({ type: 'answer_message', turn: this.turn, answerId: this.id, item: { ...this.#item, text: '' }, previousItemId });
  }

  #sayText(delta: string): void {
    this.#heldText += delta;
    if (!this.#joined && this.#heldText.trim() === '') return;
    this.#join();
    this.#ctx.emit({ type: 'answer_text', turn: this.turn, answerId: this.id, itemId: this.#item.id, delta: this.#heldText });
    this.#heldText = '';
  }
}
