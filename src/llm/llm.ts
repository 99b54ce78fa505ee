/**
 * The LLM stage's interface: a conversation keeps its history (and, in the engine, its KV cache)
 * across turns; each reply streams as text deltas and stops within one token of its signal.
 * A turn may also be offered tools: it then streams text and function calls, the caller runs the
 * calls and hands back their outputs, and the next turn continues the answer from them.
 */
import type { PriorityLike } from '../util/work-priority.js';
import type { ToolChoice, ToolSet } from './tools.js';

export interface ChatMessage {
  role: 'user' | 'assistant' | 'system';
  content: string;
  /** Function calls an assistant message made (after its text), with their outputs. */
  functionCalls?: FunctionCallRecord[];
}

export interface FunctionCallRecord {
  name: string;
  /** JSON text of the arguments object. */
  arguments: string;
  /** null: the call got no output before the conversation moved on. */
  output: string | null;
}

export interface ReplyOptions {
  signal: AbortSignal;
  maxTokens?: number;
  temperature?: number;
  /** The system prompt for this reply instead of the conversation's own (a client's instructions). */
  instructions?: string;
  /** Confirmed (default) or speculative (a preemptive answer): the scheduler and the engine's batch order by it. */
  priority?: PriorityLike;
}

export interface ReplyStats {
  /** Tokens the model evaluated for this turn (new prompt tokens only when the cache was reused). */
  inputTokens: number;
  outputTokens: number;
  /** From the call to the first text delta. */
  ttftMs: number | null;
  /** The reply stopped early: the signal fired. */
  aborted: boolean;
  /** How many old messages were dropped to fit the context before this turn. */
  droppedMessages: number;
  /** Function calls the model made whose arguments broke the tool's schema (never passed on). */
  rejectedFunctionCalls: number;
  /** Time the reply waited for the engine before it started, ms (set by the scheduler). */
  waitMs?: number;
}

export interface RespondOptions extends ReplyOptions {
  /** The functions the model may call (compiled once, where the client declared them). */
  tools?: ToolSet;
  /** Default "auto". "required" and a named function force a call through the engine's sampling and grammar. */
  toolChoice?: ToolChoice;
}

/** One piece of a turn's output: text to say, or a function call whose arguments already match its schema. */
export type ReplyPart =
  | { type: 'text'; text: string }
  | { type: 'function_call'; callId: string; name: string; /** JSON text of the arguments object. */ arguments: string };

export interface Conversation {
  /**
   * Streams the assistant's reply to `userText`. The reply joins the history when it ends (also when
   * aborted, as far as it got). An abort ends the stream quietly whenever it comes, even before the
   * first token: it is never an error.
   */
  reply(userText: string, options: ReplyOptions): AsyncIterable<string>;
  /**
   * A turn that may call tools: streams text and function calls. With `userText` null it continues
   * the assistant's answer after function call outputs were added (or simply asks for an answer).
   */
  respond(userText: string | null, options: RespondOptions): AsyncIterable<ReplyPart>;
  /** The output of a function call this conversation made; the next `respond` sees it. */
  addFunctionCallOutput(callId: string, output: string): void;
  /** Stats of the last reply, once its stream has ended. */
  readonly lastStats: ReplyStats | null;
  readonly history: readonly ChatMessage[];
  /** Replaces everything after the system prompt (a client edited, deleted or truncated messages). */
  restore(history: readonly ChatMessage[]): void;
  dispose(): void;
}

export interface ConversationOptions {
  systemPrompt?: string;
  history?: readonly ChatMessage[];
}

export interface Llm {
  openConversation(options?: ConversationOptions): Promise<Conversation>;
  dispose(): Promise<void>;
}

/** The default system prompt: short, plain answers that sound right when spoken. */
export const SPOKEN_SYSTEM_PROMPT = [
  'You are a friendly voice assistant. Your replies are spoken aloud by a text-to-speech voice.',
  'Answer in one to three short sentences of plain conversational English.',
  'Never use markdown, lists, headings, code, tables, emoji or URLs.',
  'Write numbers, units and symbols the way a person would say them.',
  'If you did not understand, ask briefly.',
].join(' ');
