/**
 * The session core's contract with its adapters: options, settings, the events it emits, the sink
 * they go to, and the summary a session ends with. Kept apart from the classes so that the wire
 * protocols (and the core's own parts) can import the shapes without the core.
 */
import type { ToolChoice, ToolSet } from '../llm/tools.js';
import type { DoneEvent, TurnMetrics } from '../pipeline/events.js';
import type { PreemptionMode } from '../pipeline/preemptive.js';
import type { EndpointerOptions } from '../vad/endpointer.js';
import type { ConversationItem } from './conversation-items.js';

/** The core hears 16 kHz PCM16 and speaks 24 kHz PCM16; adapters convert other formats at the edge. */
export const CORE_INPUT_SAMPLE_RATE = 16_000;
export const CORE_OUTPUT_SAMPLE_RATE = 24_000;

/** A session's timing and size limits (the worker's come from handler/pipeline-config.ts; a session job may shorten idleTimeoutMs). */
export interface SessionLimits {
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
  /** Items the conversation may hold; past it new input is refused (`CONVERSATION_FULL`). */
  maxItems: number;
  /** Characters of text the conversation may hold in all; past it new input is refused (`CONVERSATION_FULL`). */
  maxTextChars: number;
}

export interface SessionCoreOptions extends SessionLimits {
  voice: string;
  maxTokens: number;
  temperature: number;
  cfg: number;
  steps: number;
  vad: Partial<EndpointerOptions>;
  /** Incremental transcription: a partial transcript every this many ms of speech; 0 or absent: off. */
  partialTranscriptMs?: number;
  /** Answer during the endpoint wait (see pipeline/preemptive.ts); default full. */
  preemption?: PreemptionMode;
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

/**
 * Input the conversation did not take, nothing changed: it is at its size limit (`maxItems` or
 * `maxTextChars`), or the one item's text is longer than `MAX_ITEM_TEXT_CHARS`.
 */
export interface ItemRefused {
  refused: 'conversation_full' | 'text_too_long';
  message: string;
}

/** Text of one typed message or function output, at most (longer is refused: one item must stay cheap to tokenize). */
export const MAX_ITEM_TEXT_CHARS = 32_000;

/** Why an answer stopped before its end: the user spoke over it, or the client asked. */
export type CutReason = 'interrupted' | 'cancelled';

/** Per-answer overrides of the session's settings (a protocol's "create a response" request). */
export type AnswerRequest = Partial<AnswerSettings>;
