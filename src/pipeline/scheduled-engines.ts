/**
 * The shared engines behind the scheduler (scheduler.ts): the same Asr, Llm and Tts interfaces,
 * but every call first takes a slot on its engine's lane, in priority order, and says how long it
 * waited (Transcript.waitMs, ReplyStats.waitMs, TtsStreamStats.waitMs). Work whose signal fires
 * while it waits never reaches the engine.
 */
import type { Asr, TranscribeOptions, Transcript } from '../asr/asr.js';
import type { ChatMessage, Conversation, ConversationOptions, Llm, ReplyOptions, ReplyPart, ReplyStats, RespondOptions } from '../llm/llm.js';
import type { Tts, TtsStream, TtsStreamOptions, TtsStreamStats } from '../tts/tts.js';
import { WorkPriority } from '../util/work-priority.js';
import { InvalidInputError } from '../errors.js';
import type { Engines } from './engines.js';
import type { EngineLane, Scheduler, Slot } from './scheduler.js';

/** The engines with every ASR, LLM and TTS call going through `scheduler`. */
export function scheduleEngines(engines: Engines, scheduler: Scheduler): Engines {
  return {
    vad: engines.vad,
    asr: new ScheduledAsr(engines.asr, scheduler.asr),
    llm: new ScheduledLlm(engines.llm, scheduler.llm),
    tts: new ScheduledTts(engines.tts, scheduler.tts),
    scheduler,
    dispose: () => engines.dispose(),
  };
}

export class ScheduledAsr implements Asr {
  constructor(
    readonly inner: Asr,
    readonly lane: EngineLane,
  ) {}

  async transcribe(samples: Float32Array, options: TranscribeOptions = {}): Promise<Transcript> {
    const { value, waitMs } = await this.lane.run(() => this.inner.transcribe(samples, options), options);
    return { ...value, waitMs };
  }

  dispose(): void {
    this.inner.dispose();
  }
}

export class ScheduledLlm implements Llm {
  constructor(
    readonly inner: Llm,
    readonly lane: EngineLane,
  ) {}

  async openConversation(options?: ConversationOptions): Promise<Conversation> {
    return new ScheduledConversation(await this.inner.openConversation(options), this.lane);
  }

  dispose(): Promise<void> {
    return this.inner.dispose();
  }
}

class ScheduledConversation implements Conversation {
  #waitMs = 0;

  constructor(
    readonly inner: Conversation,
    readonly lane: EngineLane,
  ) {}

  get lastStats(): ReplyStats | null {
    const stats = this.inner.lastStats;
    return stats && { ...stats, waitMs: this.#waitMs };
  }

  get history(): readonly ChatMessage[] {
    return this.inner.history;
  }

  async *reply(userText: string, options: ReplyOptions): AsyncGenerator<string> {
    for await (const part of this.respond(userText, options)) if (part.type === 'text') yield part.text;
  }

  async *respond(userText: string | null, options: RespondOptions): AsyncGenerator<ReplyPart> {
    const queuedAt = performance.now();
    let slot;
    try {
      slot = await this.lane.acquire(options.priority, options.signal);
    } catch {
      // Called off while it waited: nothing is generated. The engine still records the turn (an
      // aborted reply joins the history as far as it got: here, nowhere), as it would have.
      this.#waitMs = performance.now() - queuedAt;
      for await (const _ of this.inner.respond(userText, options));
      return;
    }
    this.#waitMs = slot.waitMs;
    try {
      yield* this.inner.respond(userText, options);
    } finally {
      slot.release();
    }
  }

  addFunctionCallOutput(callId: string, output: string): void {
    this.inner.addFunctionCallOutput(callId, output);
  }

  restore(history: readonly ChatMessage[]): void {
    this.inner.restore(history);
  }

  dispose(): void {
    this.inner.dispose();
  }
}

/**
 * A TTS stream takes a slot on the TTS lane before it is opened on the engine, and keeps it until it ends
 * or is cancelled. Text pushed while it waits is held and sent when the stream opens; a stream cancelled
 * while it waits never reaches the engine. `promote()` moves a waiting stream up and promotes the engine's.
 */
export class ScheduledTts implements Tts {
  constructor(
    readonly inner: Tts,
    readonly lane: EngineLane,
  ) {}

  get voices(): readonly string[] {
    return this.inner.voices;
  }

  get defaultVoice(): string {
    return this.inner.defaultVoice;
  }

  open(options: TtsStreamOptions): TtsStream {
    return new ScheduledTtsStream(this.inner, this.lane, options);
  }

  dispose(): Promise<void> {
    return this.inner.dispose();
  }
}

class ScheduledTtsStream implements TtsStream {
  readonly stats: TtsStreamStats = { ttfbMs: null, firstTextAt: null, queued: false, queueWaitMs: 0, samples: 0, spokenText: '', waitMs: 0 };
  readonly #priority: WorkPriority;
  /** The engine's stream once it has a slot; null when it was cancelled while it waited. */
  readonly #opened: Promise<TtsStream | null>;
  #inner: TtsStream | null = null;
  #release: () => void = () => {};
  #held = '';
  #ended = false;

  constructor(inner: Tts, lane: EngineLane, options: TtsStreamOptions) {
    // An unknown voice is refused at once, as the engine's own open() does, before any slot is taken.
    if (options.voice !== undefined && !inner.voices.includes(options.voice)) {
      throw new InvalidInputError(`unknown voice "${options.voice}"; valid voices: ${inner.voices.join(', ')}`);
    }
    this.#priority = new WorkPriority(options.priority ?? 'confirmed');
    this.#opened = this.#open(inner, lane, options);
    // A failure is the reader's to see; one nobody reads must not be an unhandled rejection.
    this.#opened.catch(() => undefined);
  }

  async #open(inner: Tts, lane: EngineLane, options: TtsStreamOptions): Promise<TtsStream | null> {
    const queuedAt = performance.now();
    let slot: Slot;
    try {
      slot = await lane.acquire(this.#priority, options.signal);
    } catch {
      // Cut or cancelled while it waited: nothing is spoken, and nothing was asked of the engine.
      this.stats.waitMs = performance.now() - queuedAt;
      return null;
    }
    this.stats.waitMs = slot.waitMs;
    // The slot is the stream's until it is read to its end or cancelled (release() frees it once).
    this.#release = () => slot.release();
    options.signal.addEventListener('abort', this.#release, { once: true });
    let stream: TtsStream;
    try {
      stream = inner.open({ ...options, priority: this.#priority.level === 'confirmed' ? 'confirmed' : 'speculative' });
    } catch (error) {
      this.#release();
      throw error;
    }
    this.#inner = stream;
    if (this.#held) stream.push(this.#held);
    this.#held = '';
    this.stats.firstTextAt ??= stream.stats.firstTextAt;
    if (this.#ended) stream.end();
    return stream;
  }

  push(text: string): void {
    if (this.#ended) return;
    if (this.#inner) {
      this.#inner.push(text);
      this.stats.firstTextAt ??= this.#inner.stats.firstTextAt;
    } else this.#held += text;
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#inner?.end();
  }

  promote(): void {
    this.#priority.promote();
    this.#inner?.promote();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Int16Array> {
    const stream = await this.#opened;
    if (!stream) return;
    try {
      for await (const pcm of stream) {
        Object.assign(this.stats, { ...stream.stats, waitMs: this.stats.waitMs });
        yield pcm;
      }
      Object.assign(this.stats, { ...stream.stats, waitMs: this.stats.waitMs });
    } finally {
      this.#release();
    }
  }
}
