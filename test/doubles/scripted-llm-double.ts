/**
 * An LLM double that streams a given text instead of generating: deltas of `deltaChars`
 * characters (or given deltas), `delayMs` apart, honouring its signal like the real engine: an
 * abort ends the reply quietly, at most one delta later.
 * For tests that need exact words (chunking, pipeline ordering, history). It never calls a tool:
 * `respond` streams the same text as parts.
 */
import { InvalidInputError } from '../../src/errors.js';
import type { ChatMessage, Conversation, Llm, ReplyPart, ReplyStats, RespondOptions } from '../../src/llm/llm.js';

export interface ScriptedLlmOptions {
  /** The replies, in order; the last one repeats. */
  replies: (string | string[])[];
  /** Instead of `replies`: the reply to each user text. */
  replyTo?: (userText: string) => string;
  deltaChars?: number;
  delayMs?: number;
  firstDeltaDelayMs?: number;
  /**
   * Awaited before each delta is made (its index in the reply): a test holds a reply open until
   * something has happened, whatever the machine's speed. A signal that fired meanwhile stops the reply.
   */
  beforeDelta?: (index: number) => Promise<void> | void;
}

export class ScriptedLlmDouble implements Llm {
  readonly conversations: ScriptedConversationDouble[] = [];
  constructor(readonly options: ScriptedLlmOptions) {}

  async openConversation(options: { systemPrompt?: string; history?: readonly ChatMessage[] } = {}): Promise<Conversation> {
    const conversation = new ScriptedConversationDouble(this.options, options.history ?? [], options.systemPrompt);
    this.conversations.push(conversation);
    return conversation;
  }

  async dispose(): Promise<void> {}
}

export class ScriptedConversationDouble implements Conversation {
  history: ChatMessage[];
  lastStats: ReplyStats | null = null;
  #turn = 0;
  #replying = 0;
  /** The most replies this conversation was producing at once (the engine's sequence allows one). */
  maxConcurrentReplies = 0;
  disposed = false;

  constructor(
    readonly options: ScriptedLlmOptions,
    history: readonly ChatMessage[],
    readonly systemPrompt: string | undefined,
  ) {
    this.history = [...history];
  }

  async *reply(userText: string, options: { signal: AbortSignal; maxTokens?: number }): AsyncGenerator<string> {
    const script = this.options.replyTo?.(userText) ?? this.options.replies[Math.min(this.#turn++, this.options.replies.length - 1)]!;
    const size = this.options.deltaChars ?? 3;
    const deltas = Array.isArray(script) ? script : Array.from({ length: Math.ceil(script.length / size) }, (_, i) => script.slice(i * size, (i + 1) * size));
    this.history.push({ role: 'user', content: userText });
    const started = performance.now();
    let said = '';
    let ttftMs: number | null = null;
    let outputTokens = 0;
    this.maxConcurrentReplies = Math.max(this.maxConcurrentReplies, ++this.#replying);
    try {
      for (const [index, delta] of deltas.entries()) {
        await this.options.beforeDelta?.(index);
        const wait = index === 0 ? (this.options.firstDeltaDelayMs ?? this.options.delayMs) : this.options.delayMs;
        // Like the engine, which stops within one token: a signal that fires while a delta is being
        // made still lets that delta out; one that fired before stops the reply.
        const abortedBefore = options.signal.aborted;
        if (wait) await new Promise((resolve) => setTimeout(resolve, wait));
        if (abortedBefore || (options.maxTokens !== undefined && outputTokens >= options.maxTokens)) break;
        ttftMs ??= performance.now() - started;
        said += delta;
        outputTokens++;
        yield delta;
      }
    } finally {
      this.#replying--;
      this.history.push({ role: 'assistant', content: said });
      this.lastStats = { inputTokens: userText.split(/\s+/).length, outputTokens, ttftMs, aborted: options.signal.aborted, droppedMessages: 0, rejectedFunctionCalls: 0 };
    }
  }

  restore(history: readonly ChatMessage[]): void {
    this.history = [...history];
  }

  async *respond(userText: string | null, options: RespondOptions): AsyncGenerator<ReplyPart> {
    for await (const text of this.reply(userText ?? '', options)) yield { type: 'text', text };
  }

  addFunctionCallOutput(callId: string): void {
    throw new InvalidInputError(`function_call_output: no function call ${JSON.stringify(callId)} is waiting for an output`);
  }

  dispose(): void {
    this.disposed = true;
  }
}
