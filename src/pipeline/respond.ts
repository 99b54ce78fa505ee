/**
 * One spoken answer: the LLM streams text and every delta goes straight into one TTS stream, which
 * speaks while the LLM still writes (the engine starts on its first text window; normalisation for
 * speech happens on the way, word by word). Text deltas and audio chunks come out of one stream as
 * they are made. The signal stops everything, and cancels the TTS stream. A preemptive answer's
 * stream is opened `speculative` and promoted when its turn is confirmed. When the turn is offered
 * tools, a function call comes out of the same stream; the text said before it is spoken, and the
 * answer ends there (the caller runs the call and asks again).
 */
import type { Conversation, ReplyStats } from '../llm/llm.js';
import type { ToolChoice, ToolSet } from '../llm/tools.js';
import type { Tts, TtsPriority, TtsStream, TtsStreamStats } from '../tts/tts.js';
import { AsyncQueue } from '../util/async-queue.js';
import { levelOf, type PriorityLike } from '../util/work-priority.js';

export type ResponseItem =
  | { kind: 'text'; delta: string }
  | { kind: 'audio'; pcm: Int16Array }
  /** A call whose arguments match the tool's schema. */
  | { kind: 'function_call'; callId: string; name: string; arguments: string };

export interface ResponseOptions {
  signal: AbortSignal;
  voice?: string;
  maxTokens?: number;
  temperature?: number;
  cfg?: number;
  steps?: number;
  /** The system prompt for this answer instead of the conversation's own. */
  instructions?: string;
  /** false: a text-only answer; the TTS is not asked for anything. */
  speak?: boolean;
  /**
   * What the work is for (default confirmed): the scheduler orders the shared engines' work by it, and a
   * speculative answer's TTS stream is opened `speculative` (the engine serves confirmed streams first).
   * A WorkPriority promoted while the answer waits moves it up; `promote()` promotes its TTS stream.
   */
  priority?: PriorityLike;
  /** TTS starts only once this settles (an LLM-only preemptive response waits for its turn to be confirmed). */
  speakAfter?: Promise<void>;
  tools?: ToolSet;
  toolChoice?: ToolChoice;
}

/** performance.now() marks along the response's critical path, filled in as it runs. */
export interface ResponseTimings {
  requestedAt: number;
  firstTokenAt: number | null;
  /** The first text handed to the TTS stream (after normalisation: the first whole word). */
  firstTextAt: number | null;
  firstAudioAt: number | null;
  lastAudioAt: number | null;
  audioSamples: number;
  /** The TTS stream's stats (ttfb, queue wait, the text it was given); null when nothing was spoken. */
  tts: TtsStreamStats | null;
  llm: ReplyStats | null;
}

export interface Response {
  items: AsyncIterable<ResponseItem>;
  timings: ResponseTimings;
  /** The turn this (speculative) answer was prepared for is confirmed: its TTS stream is promoted. */
  promote(): void;
  /** Settles (never rejects) once the LLM and the TTS have both stopped: the conversation is free again. */
  done: Promise<void>;
}

/** `userText` empty: no new user words (after function outputs, or a client's bare request). */
export function respond(conversation: Conversation, tts: Tts, userText: string, options: ResponseOptions): Response {
  const stop = new AbortController();
  const signal = AbortSignal.any([options.signal, stop.signal]);
  const out = new AsyncQueue<ResponseItem>(() => stop.abort());
  const timings: ResponseTimings = {
    requestedAt: performance.now(),
    firstTokenAt: null,
    firstTextAt: null,
    firstAudioAt: null,
    lastAudioAt: null,
    audioSamples: 0,
    tts: null,
    llm: null,
  };
  const speaks = options.speak !== false;
  let promoted = false;
  // Read when the stream opens: an LLM-only preemptive answer opens its stream once its turn is confirmed.
  const ttsPriority = (): TtsPriority => (promoted || levelOf(options.priority) === 'confirmed' ? 'confirmed' : 'speculative');
  let stream: TtsStream | null = null;
  /** Text written before the stream opened (an LLM-only preemptive answer waits for its turn). */
  let held = '';
  let textEnded = false;
  let opened: () => void;
  const streamOpened = new Promise<void>((resolve) => (opened = resolve));

  const openStream = () => {
    const opening = tts.open({ signal, voice: options.voice, cfg: options.cfg, steps: options.steps, priority: ttsPriority() });
    stream = opening;
    timings.tts = opening.stats;
    if (held) sendText(held);
    held = '';
    if (textEnded) opening.end();
    opened();
  };
  const sendText = (text: string) => {
    stream!.push(text);
    timings.firstTextAt ??= stream!.stats.firstTextAt;
  };
  const toTts = (text: string) => {
    if (!speaks || textEnded) return;
    if (stream) sendText(text);
    else held += text;
  };
  const endTts = () => {
    if (textEnded) return;
    textEnded = true;
    stream?.end();
    // The normaliser may have held the last word back until now.
    timings.firstTextAt ??= stream?.stats.firstTextAt ?? null;
  };

  const generate = async () => {
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
          // What was said before the call is spoken: the stream is ended now.
          endTts();
          out.push({ kind: 'function_call', callId: part.callId, name: part.name, arguments: part.arguments });
          continue;
        }
        out.push({ kind: 'text', delta: part.text });
        toTts(part.text);
      }
      if (!signal.aborted) endTts();
    } finally {
      timings.llm = conversation.lastStats;
    }
  };

  const speak = async () => {
    if (!speaks) return;
    if (options.speakAfter) {
      await options.speakAfter;
      if (signal.aborted) return;
      openStream();
    }
    await streamOpened;
    for await (const pcm of stream!) {
      timings.firstAudioAt ??= performance.now();
      timings.lastAudioAt = performance.now();
      timings.audioSamples += pcm.length;
      out.push({ kind: 'audio', pcm });
    }
  };

  // Opened before the LLM starts, so the server sets the stream up (or queues it) while the prompt is read.
  let tasks: Promise<void>[];
  try {
    if (speaks && !options.speakAfter) openStream();
    tasks = [generate(), speak()];
  } catch (error) {
    // An unknown voice: refused before anything started.
    tasks = [Promise.reject(error)];
  }
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
  const promote = () => {
    if (promoted) return;
    promoted = true;
    stream?.promote();
  };
  return { items: out, timings, promote, done };
}
