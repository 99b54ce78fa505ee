/**
 * The assistant's side of a live session: turns and answers run one after another on one chain,
 * each answer an `Answer` (answer.ts). This owns what spans answers: the output pacer (audio goes
 * out at playback speed, and may still be playing after its answer is over), the preemptive answer
 * prepared during the endpoint wait, the answer in progress, and answers withdrawn before they
 * started.
 */
import { errorMessage } from '../log/logger.js';
import type { HeardTurn } from '../pipeline/listen.js';
import { PreemptiveResponder, type PreemptionMode } from '../pipeline/preemptive.js';
import { Answer, type AnswerContext } from './answer.js';
import type { ConversationItem } from './conversation-items.js';
import { CORE_OUTPUT_SAMPLE_RATE, type AnswerRequest, type CutReason } from './core-types.js';
import { newId } from './ids.js';
import { OutputPacer } from './output-pacer.js';

export interface AnswersOptions extends Omit<AnswerContext, 'pacer' | 'preemption' | 'account'> {
  preemption: PreemptionMode;
  /** Audio sent ahead of playback. */
  outputLeadMs: number;
  /** False while the client is not taking audio: the pacer holds. */
  canSend: () => boolean;
  /** A hold this long is a stuck client: `onStuck` is called. */
  stuckMs: number;
  onStuck: () => void;
  /** Each chunk of answer audio as it leaves. */
  audio(pcm: Int16Array): void;
  /** The session has ended: nothing more starts. */
  ended(): boolean;
}

export class Answers {
  readonly #ctx: AnswerContext;
  readonly #ended: () => boolean;
  /** Turns and answers queued or running on the chain. */
  #chained = 0;
  #chain: Promise<void> = Promise.resolve();
  /** Answers asked for and withdrawn before they started. */
  readonly #withdrawn = new Set<string>();
  /** The one answer being produced or played. */
  #current: Answer | null = null;
  /** The last heard turn: its timings are the next answer's reference point. */
  #lastHeard: HeardTurn | null = null;
  /** LLM tokens of every answer so far (the session's bill). */
  readonly #tokens = { llmTokensIn: 0, llmTokensOut: 0 };

  constructor(options: AnswersOptions) {
    const { preemption, outputLeadMs, canSend, stuckMs, onStuck, audio, ended, ...shared } = options;
    this.#ended = ended;
    const pacer = new OutputPacer(
      (pcm) => {
        // Called as each chunk leaves: the audio in it belongs to the current answer.
        this.#current?.sent(pcm.length);
        audio(pcm);
      },
      { sampleRate: CORE_OUTPUT_SAMPLE_RATE, leadMs: outputLeadMs, canSend, maxHoldMs: stuckMs, onStuck },
    );
    const responder = new PreemptiveResponder(shared.conversation, shared.tts, preemption, () => shared.responseOptions({}), shared.signal);
    const account = (llmTokensIn: number, llmTokensOut: number) => {
      this.#tokens.llmTokensIn += llmTokensIn;
      this.#tokens.llmTokensOut += llmTokensOut;
    };
    this.#ctx = { ...shared, pacer, preemption: responder, account };
  }

  /** The answer being made or played, if any. */
  get current(): Answer | null {
    return this.#current;
  }

  /** An answer is in progress or its audio is still playing. */
  get speaking(): boolean {
    return this.#current !== null || this.#ctx.pacer.speaking;
  }

  /** Nothing is being answered, played or waiting on the chain. */
  get idle(): boolean {
    return this.#current === null && !this.#ctx.pacer.speaking && this.#chained === 0;
  }

  /** Answer audio sent so far, in samples. */
  get sentSamples(): number {
    return this.#ctx.pacer.sentSamples;
  }

  /** LLM tokens of every answer so far. */
  get tokens(): Readonly<{ llmTokensIn: number; llmTokensOut: number }> {
    return this.#tokens;
  }

  /** Tokens of preemptive answers thrown away. */
  get wastedTokens(): number {
    return this.#ctx.preemption.wastedTokens;
  }

  /** Settles once the turn in progress and any discarded preemptive answer have let go of the conversation. */
  get settled(): Promise<unknown> {
    return Promise.allSettled([this.#chain, this.#ctx.preemption.idle]);
  }

  /** Starts a preemptive answer on the endpoint wait's transcript (the core decides whether it may). */
  speculate(text: string): void {
    this.#ctx.preemption.start(text);
  }

  /** Throws the preemptive answer away, if there is one. */
  discardSpeculation(): void {
    this.#ctx.preemption.discard();
  }

  /** Holds the outgoing audio (the user may be interrupting). */
  pauseOutput(): void {
    this.#ctx.pacer.pause();
  }

  /** Sends the held audio on from where it paused. */
  resumeOutput(): void {
    this.#ctx.pacer.resume();
  }

  /** Stops the answer in progress at once: generation, synthesis and the audio not yet sent. */
  cut(by: CutReason): void {
    this.#current?.cut(by);
    this.#ctx.pacer.flush();
  }

  /** The session ends: the answer in progress and the preemptive one stop. */
  abort(): void {
    this.#current?.abort();
    this.#ctx.preemption.discard();
  }

  /** The session has ended: the pacer lets go of its timers and audio. */
  dispose(): void {
    this.#ctx.pacer.dispose();
  }

  /**
   * A user turn joined the conversation as `item`: its text is filled in when heard, then with
   * `answer` it is answered. Runs after everything queued before it.
   */
  afterTurn(turn: number, item: ConversationItem, heard: Promise<HeardTurn>, answer: boolean): void {
    this.#queue(async () => {
      if (this.#ended()) return;
      let heardTurn: HeardTurn;
      try {
        heardTurn = await heard;
      } catch (error) {
        item.text = '';
        throw error;
      }
      if (this.#ended()) return;
      item.text = heardTurn.transcript;
      this.#ctx.emit({ type: 'transcript', turn, itemId: item.id, text: heardTurn.transcript, spoken: item.modality === 'audio', asrMs: heardTurn.asrMs });
      if (!heardTurn.transcript) {
        await this.#ctx.preemption.drop();
        return;
      }
      this.#lastHeard = heardTurn;
      if (answer) await this.#run(newId('resp'), turn, {});
    });
  }

  /** An answer to `turn` with `request`'s overrides, after everything queued before it. */
  request(id: string, turn: number, request: AnswerRequest): void {
    this.#queue(() => this.#run(id, turn, request));
  }

  /** An answer asked for with `request` that has not started never will. */
  withdraw(id: string): void {
    this.#withdrawn.add(id);
  }

  /** Runs `step` after everything queued before it: turns and answers happen one after another. */
  #queue(step: () => Promise<void>): void {
    this.#chained++;
    this.#chain = this.#chain
      .then(step)
      .catch((error: unknown) => {
        this.#ctx.log.error('session turn failed', { error: errorMessage(error) });
        this.#ctx.emit({ type: 'error', code: 'TURN_FAILED', message: errorMessage(error) });
      })
      .finally(() => this.#chained--);
  }

  async #run(id: string, turn: number, request: AnswerRequest): Promise<void> {
    if (this.#withdrawn.delete(id) || this.#ended()) return;
    const speak = this.#ctx.responseOptions(request).speak !== false;
    const userText = this.#takePendingInput();
    const heard = this.#lastHeard ?? typedTurn(userText);
    this.#lastHeard = null;
    const answer = new Answer(id, turn, speak, this.#ctx);
    this.#current = answer;
    await answer.run(request, userText, heard, () => {
      if (this.#current === answer) this.#current = null;
    });
  }

  /** Rebuilds the model's history from the items when a client edited it; returns the text of the turns to answer. */
  #takePendingInput(): string {
    const { text, rebuiltHistory } = this.#ctx.items.takePendingInput();
    if (rebuiltHistory) this.#ctx.conversation.restore(rebuiltHistory);
    return text;
  }
}

/** A typed turn has no audio: its "heard" record carries the text and zero listening time. */
export function typedTurn(text: string): HeardTurn {
  const now = performance.now();
  return { segments: [], transcript: text, vadMs: 0, endpointMs: 0, asrMs: 0, asrCriticalMs: 0, asrSpeculative: false, closedAt: now, transcriptAt: now };
}
