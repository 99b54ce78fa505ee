/**
 * Qwen2.5-1.5B-Instruct (any chat GGUF) through node-llama-cpp. One model and one context per
 * process; each conversation (llama-conversation.ts) owns a context sequence, so its KV cache carries
 * over between turns and a new turn evaluates only its new tokens. When the history no longer fits
 * beside the reply budget, the oldest turns are dropped (the system prompt stays).
 *
 * Function calling is node-llama-cpp's own: its chat wrapper (QwenChatWrapper for Qwen2.5) documents
 * the functions in the system prompt, detects `<tool_call>`, grammar-constrains the name and the
 * arguments, and stops with the calls. The caller runs them; their outputs join the model's
 * response in the history and the next turn continues from there.
 */
import type { Llama, LlamaContext, LlamaModel } from 'node-llama-cpp';
import { ConfigError, S2sError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { assertGgufHeader, assertReadableFile } from '../models/files.js';
import { LlamaConversation } from './llama-conversation.js';
import { SPOKEN_SYSTEM_PROMPT, type Conversation, type ConversationOptions, type Llm } from './llm.js';

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

/**
 * node-llama-cpp's classes. The library is imported when the model loads, not with this module:
 * its module graph takes about half a second to import, and the TTS server (the slowest engine to
 * start) is already starting by then instead of waiting behind it.
 */
export type NodeLlamaCpp = typeof import('node-llama-cpp');

export class LlamaCppLlm implements Llm {
  readonly config: LlamaCppConfig;
  readonly #lib: NodeLlamaCpp;
  readonly #model: LlamaModel;
  readonly #context: LlamaContext;
  readonly #log: Logger;

  private constructor(config: LlamaCppConfig, lib: NodeLlamaCpp, model: LlamaModel, context: LlamaContext, log: Logger) {
    this.config = config;
    this.#lib = lib;
    this.#model = model;
    this.#context = context;
    this.#log = log;
  }

  static async load(config: LlamaCppConfig, log: Logger): Promise<LlamaCppLlm> {
    await assertReadableFile(config.modelPath, 'LLM model');
    await assertGgufHeader(config.modelPath, 'LLM model');
    const lib = await import('node-llama-cpp');
    let llama: Llama;
    try {
      llama = await lib.getLlama({ gpu: config.gpu === 'auto' ? 'auto' : config.gpu, build: 'never', logLevel: 'error' as never });
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
    return new LlamaCppLlm(config, lib, model, context, log);
  }

  async openConversation(options: ConversationOptions = {}): Promise<Conversation> {
    if (this.#context.sequencesLeft === 0) {
      throw new S2sError('LLM_BUSY', `all ${this.config.maxConversations} LLM conversation slots are in use`, { retryable: true });
    }
    const chat = new this.#lib.LlamaChat({ contextSequence: this.#context.getSequence(), autoDisposeSequence: true });
    const conversation = new LlamaConversation(this.config, this.#lib, chat, this.#model, this.#log, options.systemPrompt ?? SPOKEN_SYSTEM_PROMPT);
    if (options.history?.length) conversation.restore(options.history);
    return conversation;
  }

  /** Frees the context and model. The Llama binding itself is shared per process and stays loaded. */
  async dispose(): Promise<void> {
    await this.#context.dispose();
    await this.#model.dispose();
  }
}
