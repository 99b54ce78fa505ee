/**
 * One spoken answer: the LLM streams text, the clause chunker cuts it, TTS speaks the pieces in
 * order. All three overlap: the LLM keeps generating while earlier pieces are spoken. Text deltas
 * and audio chunks come out of one stream as they are made. The signal stops everything.
 */
import { ClauseChunker, type ChunkerOptions } from '../llm/clause-chunker.js';
import type { Conversation, ReplyStats } from '../llm/llm.js';
import { speakInOrder, type PieceReport } from '../tts/speaker.js';
import type { Tts } from '../tts/tts.js';
import { AsyncQueue } from '../util/async-queue.js';

/** Audio carries the index of the text piece it speaks (`timings.pieces[piece]`), so a cut answer knows what was heard. */
export type ResponseItem = { kind: 'text'; delta: string } | { kind: 'audio'; pcm: Int16Array; piece: number };

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
  /**
   * Resolves (never rejects) once the LLM and TTS have let go, which can be a little after a reader
   * stopped early: the next reply on the same conversation must wait for it.
   */
  done: Promise<void>;
}

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
      for await (const delta of conversation.reply(userText, { signal, maxTokens: options.maxTokens, temperature: options.temperature, instructions: options.instructions })) {
        timings.firstTokenAt ??= performance.now();
        out.push({ kind: 'text', delta });
        handOver(chunker.push(delta));
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
    const speech = speakInOrder(tts, pieces, { signal, voice: options.voice, cfg: options.cfg, steps: options.steps });
    timings.pieces = speech.pieces;
    for await (const chunk of speech) {
      timings.firstAudioAt ??= performance.now();
      timings.lastAudioAt = performance.now();
      timings.audioSamples += chunk.pcm.length;
      out.push({ kind: 'audio', pcm: chunk.pcm, piece: chunk.piece });
    }
  };

  const stages = [generate(), speak()];
  Promise.all(stages).then(
    () => out.end(),
    (error: unknown) => {
      // Whatever a stage throws once the answer was called off is part of stopping, not a failure.
      const aborted = signal.aborted;
      stop.abort();
      if (aborted) out.end();
      else out.fail(error);
    },
  );
  return { items: out, timings, done: Promise.allSettled(stages).then(() => undefined) };
}
