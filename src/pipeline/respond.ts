/**
 * One spoken answer: the LLM streams text, the clause chunker cuts it, TTS speaks the pieces in
 * order. All three overlap: the LLM keeps generating while earlier pieces are spoken. Text deltas
 * and audio chunks come out of one stream as they are made. The signal stops everything.
 * When the turn is offered tools, a function call comes out of the same stream; the text said
 * before it is spoken, and the answer ends there (the caller runs the call and asks again).
 */
import { ClauseChunker, type ChunkerOptions } from '../llm/clause-chunker.js';
import type { Conversation, ReplyStats } from '../llm/llm.js';
import type { ToolChoice, ToolSet } from '../llm/tools.js';
import { speakInOrder, type PieceReport } from '../tts/speaker.js';
import type { Tts } from '../tts/tts.js';
import { AsyncQueue } from '../util/async-queue.js';
import type { PriorityLike } from '../util/work-priority.js';

/** Audio carries the index of the text piece it speaks (`timings.pieces[piece]`), so a cut answer knows what was heard. */
export type ResponseItem =
  | { kind: 'text'; delta: string }
  | { kind: 'audio'; pcm: Int16Array; piece: number }
  /** A call whose arguments match the tool's schema. */
  | { kind: 'function_call'; callId: string; name: string; arguments: string };

export interface ResponseOptions {
  signal: AbortSignal;
  voice?: string;
  maxTokens?: number;
  temperature?: number;
  cfg?: number;
  steps?: number;
  chunker?: Partial<ChunkerOptions>;
  /** The system prompt for this answer instead of the conversation's own. */
  instructions?: string;
  /** false: a text-only answer; the TTS is not asked for anything. */
  speak?: boolean;
  /** TTS starts only once this settles (an LLM-only preemptive response waits for its turn to be confirmed). */
  speakAfter?: Promise<void>;
  tools?: ToolSet;
  toolChoice?: ToolChoice;
  /** Confirmed (default) or speculative (a preemptive answer, promoted when its turn is confirmed): for the scheduler. */
  priority?: PriorityLike;
}

/** performance.now() marks along the response's critical path, filled in as it runs. */
export interface ResponseTimings {
  requestedAt: number;
  firstTokenAt: number | null;
  firstPieceAt: number | null;
  firstAudioAt: number | null;
  lastAudioAt: number | null;
  audioSamples: number;
  pieces: PieceReport[];
  llm: ReplyStats | null;
}

export interface Response {
  items: AsyncIterable<ResponseItem>;
  timings: ResponseTimings;
  /** Settles (never rejects) once the LLM and the TTS have both stopped: the conversation is free again. */
  done: Promise<void>;
}

/** `userText` empty: no new user words (after function outputs, or a client's bare request). */
export function respond(conversation: Conversation, tts: Tts, userText: string, options: ResponseOptions): Response {
  const stop = new AbortController();
  const signal = AbortSignal.any([options.signal, stop.signal]);
  const out = new AsyncQueue<ResponseItem>(() => stop.abort());
  const pieces = new AsyncQueue<string>();
  const timings: ResponseTimings = {
    requestedAt: performance.now(),
    firstTokenAt: null,
    firstPieceAt: null,
    firstAudioAt: null,
    lastAudioAt: null,
    audioSamples: 0,
    pieces: [],
    llm: null,
  };

  const generate = async () => {
    const chunker = new ClauseChunker(options.chunker);
    const handOver = (texts: string[]) => {
      if (options.speak === false) return;
      for (const text of texts) {
        timings.firstPieceAt ??= performance.now();
        pieces.push(text);
      }
    };
    try {
      const parts = conversation.respond(userText === '' ? null : userText, {
        signal,
        maxTokens: options.maxTokens,
        temperature: options.temperature,
        instructions: options.instructions,
        tools: options.tools,
        toolChoice: options.toolChoice,
        priority: options.priority,
      });
      for await (const part of parts) {
        timings.firstTokenAt ??= performance.now();
        if (part.type === 'function_call') {
          // What was said before the call is spoken: the last clause goes to the TTS now.
          handOver(chunker.flush());
          out.push({ kind: 'function_call', callId: part.callId, name: part.name, arguments: part.arguments });
          continue;
        }
        out.push({ kind: 'text', delta: part.text });
        handOver(chunker.push(part.text));
      }
      if (!signal.aborted) handOver(chunker.flush());
      pieces.end();
    } catch (error) {
      pieces.fail(error);
      throw error;
    } finally {
      timings.llm = conversation.lastStats;
    }
  };

  const speak = async () => {
    if (options.speakAfter) await options.speakAfter;
    const speech = speakInOrder(tts, pieces, { signal, voice: options.voice, cfg: options.cfg, steps: options.steps, priority: options.priority });
    timings.pieces = speech.pieces;
    for await (const chunk of speech) {
      timings.firstAudioAt ??= performance.now();
      timings.lastAudioAt = performance.now();
      timings.audioSamples += chunk.pcm.length;
      out.push({ kind: 'audio', pcm: chunk.pcm, piece: chunk.piece });
    }
  };

  const tasks = [generate(), speak()];
  Promise.all(tasks).then(
    () => out.end(),
    (error: unknown) => {
      // Whatever a stage throws once the answer was called off is part of stopping, not a failure.
      const aborted = signal.aborted;
      stop.abort();
      if (aborted) out.end();
      else out.fail(error);
    },
  );
  const done = Promise.allSettled(tasks).then(() => undefined);
  return { items: out, timings, done };
}
