/**
 * Qwen2.5-1.5B-Instruct (any chat GGUF) through node-llama-cpp. One model and one context per
 * process; each conversation owns a context sequence, so its KV cache carries over between turns
 * and a new turn evaluates only its new tokens. When the history no longer fits beside the
 * reply budget, the oldest turns are dropped (the system prompt stays).
 */
import { getLlama, LlamaChatSession, LlamaText, type ChatHistoryItem, type Llama, type LlamaContext, type LlamaModel } from 'node-llama-cpp';
import { ConfigError, S2sError } from '../errors.js';
import { assertGgufHeader, assertReadableFile } from '../models/files.js';
import type { Logger } from '../log/logger.js';
import { AsyncQueue } from '../util/async-queue.js';
import { SPOKEN_SYSTEM_PROMPT, type ChatMessage, type Conversation, type ConversationOptions, type Llm, type ReplyOptions, type ReplyStats } from './llm.js';

export interface LlamaCppConfig {
  modelPath: string;
  /** 'cuda' requires a GPU; 'auto' uses one when present; false forces CPU. */
  gpu: 'cuda' | 'auto' | false;
  /** Tokens per conversation (history + reply). */
  contextSize: number;
  /** Conversations that can be open at once (context sequences). */
  maxConversations: number;
  /** CPU threads; 0 lets node-llama-cpp decide. */
  threads: number;
  defaultMaxTokens: number;
  defaultTemperature: number;
}

/** Tokens the chat template adds around each message (role markers, separators). */
const TEMPLATE_TOKENS_PER_MESSAGE = 6;

export class LlamaCppLlm implements Llm {
  readonly config: LlamaCppConfig;
  readonly #model: LlamaModel;
  readonly #context: LlamaContext;
  readonly #log: Logger;

  private constructor(config: LlamaCppConfig, model: LlamaModel, context: LlamaContext, log: Logger) {
    this.config = config;
    this.#model = model;
    this.#context = context;
    this.#log = log;
  }

  static async load(config: LlamaCppConfig, log: Logger): Promise<LlamaCppLlm> {
    await assertReadableFile(config.modelPath, 'LLM model');
    await assertGgufHeader(config.modelPath, 'LLM model');
    let llama: Llama;
    try {
      llama = await getLlama({ gpu: config.gpu === 'auto' ? 'auto' : config.gpu, build: 'never', logLevel: 'error' as never });
    } catch (cause) {
      throw new ConfigError(`node-llama-cpp could not load a ${config.gpu === 'cuda' ? 'CUDA' : 'prebuilt'} binary: ${(cause as Error).message}`, { cause });
    }
    if (config.gpu === 'cuda' && llama.gpu !== 'cuda') {
      throw new ConfigError(`LLM: CUDA was required but node-llama-cpp is running on ${llama.gpu || 'CPU'}`);
    }
    let model: LlamaModel;
    try {
      model = await llama.loadModel({ modelPath: config.modelPath, gpuLayers: llama.gpu ? 'max' : 0 });
    } catch (cause) {
      throw new ConfigError(`LLM model ${config.modelPath} could not be loaded (missing or corrupt GGUF): ${(cause as Error).message}`, { cause });
    }
    const context = await model.createContext({
      contextSize: config.contextSize * config.maxConversations,
      sequences: config.maxConversations,
      ...(config.threads > 0 ? { threads: config.threads } : {}),
    });
    log.info('LLM loaded', { gpu: llama.gpu || 'cpu', context_size: context.contextSize, sequences: config.maxConversations });
    return new LlamaCppLlm(config, model, context, log);
  }

  async openConversation(options: ConversationOptions = {}): Promise<Conversation> {
    if (this.#context.sequencesLeft === 0) {
      throw new S2sError('LLM_BUSY', `all ${this.config.maxConversations} LLM conversation slots are in use`, { retryable: true });
    }
    const session = new LlamaChatSession({
      contextSequence: this.#context.getSequence(),
      systemPrompt: options.systemPrompt ?? SPOKEN_SYSTEM_PROMPT,
      autoDisposeSequence: true,
    });
    const conversation = new LlamaConversation(this, session, this.#model, this.#log, options.systemPrompt ?? SPOKEN_SYSTEM_PROMPT);
    if (options.history?.length) conversation.restore(options.history);
    return conversation;
  }

  /** Frees the context and model. The Llama binding itself is shared per process and stays loaded. */
  async dispose(): Promise<void> {
    await this.#context.dispose();
    await this.#model.dispose();
  }
}

export class LlamaConversation implements Conversation {
  readonly #llm: LlamaCppLlm;
  readonly #session: LlamaChatSession;
  readonly #model: LlamaModel;
  readonly #log: Logger;
  /** The system prompt the conversation was opened with; a reply's instructions replace it for that reply. */
  readonly #systemPrompt: string;
  lastStats: ReplyStats | null = null;

  constructor(llm: LlamaCppLlm, session: LlamaChatSession, model: LlamaModel, log: Logger, systemPrompt: string) {
    this.#llm = llm;
    this.#session = session;
    this.#model = model;
    this.#log = log;
    this.#systemPrompt = systemPrompt;
  }

  /** The chat wrapper node-llama-cpp chose from the model's template (QwenChatWrapper for Qwen2.5). */
  get chatWrapperName(): string {
    return this.#session.chatWrapper.constructor.name;
  }

  get history(): ChatMessage[] {
    return this.#session.getChatHistory().flatMap((item): ChatMessage[] => {
      if (item.type === 'user') return [{ role: 'user', content: item.text }];
      if (item.type === 'model') return [{ role: 'assistant', content: item.response.filter((r) => typeof r === 'string').join('') }];
      return [];
    });
  }

  restore(history: readonly ChatMessage[]): void {
    const [first] = this.#session.getChatHistory();
    const system = first?.type === 'system' ? [first] : [];
    const items: ChatHistoryItem[] = history.map((m) =>
      m.role === 'user' ? { type: 'user', text: m.content } : m.role === 'system' ? { type: 'system', text: m.content } : { type: 'model', response: [m.content] },
    );
    this.#session.setChatHistory([...system, ...items]);
  }

  /** Makes `prompt` the system prompt (the first history item) unless it already is. */
  #useSystemPrompt(prompt: string): void {
    const items = this.#session.getChatHistory();
    const first = items[0];
    if (first?.type === 'system' && LlamaText.fromJSON(first.text).toString() === prompt) return;
    const rest = first?.type === 'system' ? items.slice(1) : items;
    this.#session.setChatHistory([{ type: 'system', text: prompt }, ...rest]);
  }

  reply(userText: string, options: ReplyOptions): AsyncIterable<string> {
    const maxTokens = options.maxTokens ?? this.#llm.config.defaultMaxTokens;
    const stop = new AbortController();
    const onAbort = () => stop.abort(options.signal.reason);
    options.signal.addEventListener('abort', onAbort, { once: true });
    // A signal that fired before this call never calls the listener.
    if (options.signal.aborted) stop.abort(options.signal.reason);
    const queue = new AsyncQueue<string>(() => stop.abort(new Error('reply stream closed by its reader')));
    this.#useSystemPrompt(options.instructions ?? this.#systemPrompt);
    const droppedMessages = this.#fitContext(userText, maxTokens);
    const meter = this.#session.sequence.tokenMeter;
    const before = meter.getState();
    const started = performance.now();
    let ttftMs: number | null = null;
    const finish = () => {
      const after = meter.getState();
      this.lastStats = {
        inputTokens: after.usedInputTokens - before.usedInputTokens,
        outputTokens: after.usedOutputTokens - before.usedOutputTokens,
        ttftMs,
        aborted: stop.signal.aborted,
        droppedMessages,
      };
      queue.end();
    };
    this.#session
      .prompt(userText, {
        maxTokens,
        temperature: options.temperature ?? this.#llm.config.defaultTemperature,
        signal: stop.signal,
        stopOnAbortSignal: true,
        onTextChunk: (text) => {
          if (!text) return;
          ttftMs ??= performance.now() - started;
          queue.push(text);
        },
      })
      .then(
        () => finish(),
        (error: unknown) => {
          // stopOnAbortSignal ends quietly only after a first token; before it (prefill, waiting
          // for the sequence) node-llama-cpp throws the abort reason. An abort is never an error:
          // the user's words stay in the history with the nothing that was said back.
          if (!stop.signal.aborted) return queue.fail(error);
          this.#session.setChatHistory([...this.#session.getChatHistory(), { type: 'user', text: userText }, { type: 'model', response: [] }]);
          finish();
        },
      )
      .finally(() => options.signal.removeEventListener('abort', onAbort));
    return queue;
  }

  /** Drops the oldest user/assistant pairs until history + new message + reply budget fit the context. */
  #fitContext(userText: string, maxTokens: number): number {
    const budget = this.#session.sequence.contextSize - maxTokens;
    const incoming = this.#model.tokenize(userText).length + 2 * TEMPLATE_TOKENS_PER_MESSAGE;
    // The sequence knows how many tokens its context holds: while that plus the new turn fits, there is
    // nothing to count. (Before the first turn it holds none yet, so a restored history is counted.)
    const held = this.#session.sequence.nextTokenIndex;
    if (held > 0 && held + incoming <= budget) return 0;
    const items = this.#session.getChatHistory();
    const cost = (item: ChatHistoryItem) => {
      const text =
        item.type === 'model'
          ? item.response.filter((r) => typeof r === 'string').join('')
          : item.type === 'system'
            ? LlamaText.fromJSON(item.text).toString()
            : item.text;
      return this.#model.tokenize(text).length + TEMPLATE_TOKENS_PER_MESSAGE;
    };
    let total = items.reduce((sum, item) => sum + cost(item), 0) + incoming;
    let dropped = 0;
    while (total > budget) {
      const oldest = items.findIndex((item) => item.type !== 'system');
      if (oldest < 0) break;
      total -= cost(items[oldest]!);
      items.splice(oldest, 1);
      dropped++;
    }
    if (dropped > 0) {
      this.#session.setChatHistory(items);
      this.#log.info('LLM context full: dropped oldest messages', { dropped });
    }
    return dropped;
  }

  dispose(): void {
    this.#session.dispose();
  }
}
