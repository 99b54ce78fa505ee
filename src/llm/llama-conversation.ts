/**
 * One conversation on the shared Qwen model (llama-cpp-llm.ts loads it): its own context sequence, whose
 * KV cache carries over between turns; the history as node-llama-cpp renders it, fitted to the context
 * by dropping the oldest turns (the system prompt stays); turns one at a time; function calls handed to
 * the caller and their outputs joined back into the model's response.
 */
import { randomUUID } from 'node:crypto';
import type { ChatHistoryItem, ChatModelFunctionCall, ChatModelFunctions, ChatModelResponse, EvaluationPriority, LlamaChat, LlamaChatResponseFunctionCall, LlamaModel, TokenBias } from 'node-llama-cpp';
import { InvalidInputError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { AsyncQueue } from '../util/async-queue.js';
import { levelOf } from '../util/work-priority.js';
import type { LlamaCppConfig, NodeLlamaCpp } from './llama-cpp-llm.js';
import type { ChatMessage, Conversation, FunctionCallRecord, ReplyOptions, ReplyPart, ReplyStats, RespondOptions } from './llm.js';
import type { ToolChoice } from './tools.js';

/** Tokens the chat template adds around each message (role markers, separators). */
const TEMPLATE_TOKENS_PER_MESSAGE = 6;
/** Calls whose arguments break the schema are generated again this many times, then the model answers in words. */
const CALL_RETRIES = 1;
/** Logit added to the first token of the chat wrapper's call syntax when a call is required. */
const FORCE_CALL_LOGIT = 100;
/**
 * node-llama-cpp evaluates the sequences of one context in one batch; when more tokens are queued
 * than a batch holds, it gives more of the batch to higher priorities (1-5): confirmed answers
 * before preemptive ones.
 */
const CONFIRMED_PRIORITY: EvaluationPriority = 5;
const SPECULATIVE_PRIORITY: EvaluationPriority = 3;
/** What the model is told when a call it made got no output before the conversation moved on. */
const NO_OUTPUT = 'The function returned no output.';

/** A function call sent to the caller, waiting for its output. */
interface PendingCall {
  callId: string;
  call: LlamaChatResponseFunctionCall<ChatModelFunctions>;
  description: string | undefined;
  output: string | null;
}

export class LlamaConversation implements Conversation {
  readonly #config: LlamaCppConfig;
  readonly #lib: NodeLlamaCpp;
  readonly #chat: LlamaChat;
  readonly #model: LlamaModel;
  readonly #log: Logger;
  /** The whole conversation as node-llama-cpp renders it (system prompt first). */
  #items: ChatHistoryItem[];
  /** The context window of the last evaluation, so the next turn reuses what the KV cache holds. */
  #lastWindow: ChatHistoryItem[] | null = null;
  #lastShiftMetadata: object | null = null;
  #pending: PendingCall[] = [];
  /** The system prompt the conversation was opened with; a reply's instructions replace it for that reply. */
  readonly #systemPrompt: string;
  /** Turns run one at a time, in the order they were asked for. */
  #busy: Promise<void> = Promise.resolve();
  lastStats: ReplyStats | null = null;

  constructor(config: LlamaCppConfig, lib: NodeLlamaCpp, chat: LlamaChat, model: LlamaModel, log: Logger, systemPrompt: string) {
    this.#config = config;
    this.#lib = lib;
    this.#chat = chat;
    this.#model = model;
    this.#log = log;
    this.#systemPrompt = systemPrompt;
    this.#items = chat.chatWrapper.generateInitialChatHistory({ systemPrompt });
  }

  /** The chat wrapper node-llama-cpp chose from the model's template (QwenChatWrapper for Qwen2.5). */
  get chatWrapperName(): string {
    return this.#chat.chatWrapper.constructor.name;
  }

  /** The messages after the system prompt; an assistant message lists the function calls it made. */
  get history(): ChatMessage[] {
    return this.#items.flatMap((item, index): ChatMessage[] => {
      if (item.type === 'user') return [{ role: 'user', content: item.text }];
      if (item.type === 'system') return index === 0 ? [] : [{ role: 'system', content: this.#lib.LlamaText.fromJSON(item.text).toString() }];
      const content = item.response.filter((r) => typeof r === 'string').join('');
      const functionCalls = item.response.filter((r) => typeof r !== 'string' && r.type === 'functionCall').map(functionCallRecord);
      return [{ role: 'assistant', content, ...(functionCalls.length > 0 ? { functionCalls } : {}) }];
    });
  }

  restore(history: readonly ChatMessage[]): void {
    const [first] = this.#items;
    const system = first?.type === 'system' ? [first] : [];
    const items = history.map((m): ChatHistoryItem => {
      if (m.role === 'user') return { type: 'user', text: m.content };
      if (m.role === 'system') return { type: 'system', text: m.content };
      const calls = (m.functionCalls ?? []).map(
        (call, index): ChatModelFunctionCall => ({
          type: 'functionCall',
          name: call.name,
          params: parseOutput(call.arguments),
          result: call.output === null ? NO_OUTPUT : parseOutput(call.output),
          ...(index === 0 ? { startsNewChunk: true } : {}),
        }),
      );
      return { type: 'model', response: [...(m.content ? [m.content] : []), ...calls] };
    });
    this.#items = [...system, ...items];
    this.#lastWindow = null;
    // Calls still waiting for an output belong to the history that was replaced.
    this.#pending = [];
  }

  /** Makes `prompt` the system prompt (the first history item) unless it already is. */
  #useSystemPrompt(prompt: string): void {
    const first = this.#items[0];
    if (first?.type === 'system' && this.#lib.LlamaText.fromJSON(first.text).toString() === prompt) return;
    this.#items = [{ type: 'system', text: prompt }, ...(first?.type === 'system' ? this.#items.slice(1) : this.#items)];
    this.#lastWindow = null;
  }

  async *reply(userText: string, options: ReplyOptions): AsyncGenerator<string> {
    for await (const part of this.respond(userText, options)) if (part.type === 'text') yield part.text;
  }

  respond(userText: string | null, options: RespondOptions): AsyncIterable<ReplyPart> {
    const stop = new AbortController();
    const onAbort = () => stop.abort(options.signal.reason);
    if (options.signal.aborted) onAbort();
    else options.signal.addEventListener('abort', onAbort, { once: true });
    const queue = new AsyncQueue<ReplyPart>(() => stop.abort(new Error('reply stream closed by its reader')));
    const turn = this.#busy.then(() => this.#turn(userText, options, stop.signal, queue));
    this.#busy = turn.then(
      () => undefined,
      () => undefined,
    );
    turn
      .then(
        () => queue.end(),
        (error: unknown) => queue.fail(error),
      )
      .finally(() => options.signal.removeEventListener('abort', onAbort));
    return queue;
  }

  addFunctionCallOutput(callId: string, output: string): void {
    const pending = this.#pending.find((p) => p.callId === callId);
    if (!pending) throw new InvalidInputError(`function_call_output: no function call ${JSON.stringify(callId)} is waiting for an output`);
    pending.output = output;
  }

  async #turn(userText: string | null, options: RespondOptions, signal: AbortSignal, queue: AsyncQueue<ReplyPart>): Promise<void> {
    const maxTokens = options.maxTokens ?? this.#config.defaultMaxTokens;
    this.#useSystemPrompt(options.instructions ?? this.#systemPrompt);
    const incoming = [userText ?? '', ...this.#pending.map((p) => p.output ?? NO_OUTPUT)].join('\n');
    const droppedMessages = this.#fitContext(incoming, maxTokens);
    this.#settlePending();
    const last = this.#items.at(-1);
    if (userText !== null) this.#append({ type: 'user', text: userText }, { type: 'model', response: [] });
    // Without new words, an answer that ended in function calls continues from their results;
    // anything else gets a new assistant message.
    else if (last?.type !== 'model' || typeof last.response.at(-1) !== 'object' || (last.response.at(-1) as { type: string }).type !== 'functionCall') {
      this.#append({ type: 'model', response: [] });
    }

    const meter = this.#chat.sequence.tokenMeter;
    const before = meter.getState();
    const started = performance.now();
    let ttftMs: number | null = null;
    const emit = (part: ReplyPart) => {
      ttftMs ??= performance.now() - started;
      queue.push(part);
    };
    let rejectedFunctionCalls = 0;
    for (let attempt = 0; !signal.aborted; attempt++) {
      const outputTokens = meter.getState().usedOutputTokens - before.usedOutputTokens;
      if (outputTokens >= maxTokens) break;
      // After the retries, the model answers in words: nothing is offered.
      const choice: ToolChoice = attempt > CALL_RETRIES ? 'none' : (options.toolChoice ?? 'auto');
      const functions = options.tools?.functions(choice);
      const calls = await this.#generate({
        functions,
        forceCall: functions !== undefined && choice !== 'auto',
        maxTokens: maxTokens - outputTokens,
        temperature: options.temperature ?? this.#config.defaultTemperature,
        signal,
        // Read at each generation: a preemptive answer promoted meanwhile evaluates as confirmed from here on.
        evaluationPriority: levelOf(options.priority) === 'confirmed' ? CONFIRMED_PRIORITY : SPECULATIVE_PRIORITY,
        onText: (text) => emit({ type: 'text', text }),
      });
      if (calls.length === 0 || signal.aborted) break;
      const problems = await Promise.all(calls.map((call) => (typeof call === 'string' ? call : options.tools!.problem(call.functionName, call.params))));
      if (problems.every((p) => p === null)) {
        for (const call of calls as LlamaChatResponseFunctionCall<ChatModelFunctions>[]) {
          const callId = `call_${randomUUID().replaceAll('-', '').slice(0, 24)}`;
          this.#pending.push({ callId, call, description: options.tools!.description(call.functionName), output: null });
          emit({ type: 'function_call', callId, name: call.functionName, arguments: JSON.stringify(call.params ?? {}) });
        }
        break;
      }
      rejectedFunctionCalls += calls.length;
      this.#log.warn('LLM: a function call broke its schema and was not passed on', {
        problem: problems.filter((p) => p !== null).join(' | '),
        next: attempt < CALL_RETRIES ? 'generate it again' : 'answer in words',
      });
    }
    const after = meter.getState();
    this.lastStats = {
      inputTokens: after.usedInputTokens - before.usedInputTokens,
      outputTokens: after.usedOutputTokens - before.usedOutputTokens,
      ttftMs,
      aborted: signal.aborted,
      droppedMessages,
      rejectedFunctionCalls,
    };
  }

  /**
   * One generation. Returns the calls the model made (a string stands for a call the library
   * itself rejected), or none when it answered in text, stopped at its limit or was aborted.
   */
  async #generate(request: {
    functions: ChatModelFunctions | undefined;
    forceCall: boolean;
    maxTokens: number;
    temperature: number;
    signal: AbortSignal;
    evaluationPriority: EvaluationPriority;
    onText: (text: string) => void;
  }): Promise<(LlamaChatResponseFunctionCall<ChatModelFunctions> | string)[]> {
    const force = request.forceCall ? this.#forceCallBias() : null;
    const noBias = new this.#lib.TokenBias(this.#model.tokenizer);
    let sampled = 0;
    try {
      const response = await this.#chat.generateResponse(this.#items, {
        ...(request.functions ? { functions: request.functions, documentFunctionParams: true } : {}),
        // A required call starts with the wrapper's call syntax: only the first token is pushed,
        // the name and arguments grammar does the rest.
        ...(force ? { tokenBias: () => (sampled++ === 0 ? force : noBias) } : {}),
        maxTokens: request.maxTokens,
        temperature: request.temperature,
        signal: request.signal,
        stopOnAbortSignal: true,
        evaluationPriority: request.evaluationPriority,
        onTextChunk: (text) => {
          if (text) request.onText(text);
        },
        contextShift: { lastEvaluationMetadata: this.#lastShiftMetadata },
        lastEvaluationContextWindow: { history: this.#lastWindow ?? undefined, minimumOverlapPercentageToPreventContextShift: 0.5 },
      });
      this.#items = response.lastEvaluation.cleanHistory;
      this.#lastWindow = response.lastEvaluation.contextWindow;
      this.#lastShiftMetadata = response.lastEvaluation.contextShiftMetadata;
      return response.functionCalls ?? [];
    } catch (error) {
      if (request.signal.aborted) return [];
      // node-llama-cpp's own check of a call (unknown name, arguments off its grammar); not exported by name.
      if (error instanceof Error && error.constructor.name === 'LlamaFunctionCallValidationError') return [error.message];
      throw error;
    }
  }

  #forceCallBias(): TokenBias | null {
    const prefix = this.#chat.chatWrapper.settings.functions.call.prefix;
    const [first] = this.#lib.LlamaText(prefix).tokenize(this.#model.tokenizer);
    return first === undefined ? null : new this.#lib.TokenBias(this.#model.tokenizer).set(first, { logit: FORCE_CALL_LOGIT });
  }

  /** Calls the caller has answered (or not, when the conversation moves on) join the model's response. */
  #settlePending(): void {
    this.#pending.forEach(({ call, description, output }, index) => {
      const item: ChatModelFunctionCall = {
        type: 'functionCall',
        name: call.functionName,
        ...(description ? { description } : {}),
        params: call.params,
        result: output === null ? NO_OUTPUT : parseOutput(output),
        rawCall: call.raw,
        ...(index === 0 ? { startsNewChunk: true } : {}),
      };
      for (const items of [this.#items, this.#lastWindow]) if (items) withLastModelResponse(items).response.push(item);
    });
    this.#pending = [];
  }

  #append(...items: ChatHistoryItem[]): void {
    this.#items.push(...items);
    this.#lastWindow?.push(...structuredClone(items));
  }

  /** Drops the oldest items until history + new text + reply budget fit the context. */
  #fitContext(newText: string, maxTokens: number): number {
    const budget = this.#chat.sequence.contextSize - maxTokens;
    const incoming = this.#model.tokenize(newText).length + 2 * TEMPLATE_TOKENS_PER_MESSAGE;
    // The sequence knows how many tokens its context holds: while that plus the new turn fits, there is
    // nothing to count. (Before the first turn it holds none yet, so a restored history is counted.)
    const held = this.#chat.sequence.nextTokenIndex;
    if (held > 0 && held + incoming <= budget) return 0;
    const items = this.#items;
    const cost = (item: ChatHistoryItem) => {
      const text =
        item.type === 'model'
          ? item.response.map((r) => (typeof r === 'string' ? r : r.type === 'functionCall' ? JSON.stringify([r.params, r.result]) : r.text)).join('')
          : item.type === 'system'
            ? this.#lib.LlamaText.fromJSON(item.text).toString()
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
      this.#lastWindow = null;
      this.#log.info('LLM context full: dropped oldest messages', { dropped });
    }
    return dropped;
  }

  dispose(): void {
    this.#chat.dispose();
  }
}

function functionCallRecord(call: ChatModelFunctionCall): FunctionCallRecord {
  return { name: call.name, arguments: JSON.stringify(call.params ?? {}), output: call.result === NO_OUTPUT ? null : typeof call.result === 'string' ? call.result : JSON.stringify(call.result) };
}

/** The model reads a JSON output as data and anything else as text. */
function parseOutput(output: string): unknown {
  try {
    return JSON.parse(output);
  } catch {
    return output;
  }
}

/**
 * The model response at the end of the items, as a fresh copy this list alone holds (node-llama-cpp's
 * clean history and context window share item objects); added when the conversation ended elsewhere.
 */
function withLastModelResponse(items: ChatHistoryItem[]): ChatModelResponse {
  const last = items.at(-1);
  const copy: ChatModelResponse = last?.type === 'model' ? { ...last, response: [...last.response] } : { type: 'model', response: [] };
  if (last?.type === 'model') items[items.length - 1] = copy;
  else items.push(copy);
  return copy;
}
