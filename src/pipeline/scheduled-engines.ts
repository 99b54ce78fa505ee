/**
 * The shared engines behind the scheduler (scheduler.ts): the same Asr, Llm and Tts interfaces,
 * but every call first takes a slot on its engine's lane, in priority order, and says how long it
 * waited (Transcript.waitMs, ReplyStats.waitMs, SynthesisStats.waitMs). Work whose signal fires
 * while it waits never reaches the engine.
 */
import type { Asr, TranscribeOptions, Transcript } from '../asr/asr.js';
import type { ChatMessage, Conversation, ConversationOptions, Llm, ReplyOptions, ReplyPart, ReplyStats, RespondOptions } from '../llm/llm.js';
import type { Synthesis, SynthesisOptions, SynthesisStats, Tts } from '../tts/tts.js';
import type { Engines } from './engines.js';
import type { EngineLane, Scheduler } from './scheduler.js';

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

  synthesize(text: string, options: SynthesisOptions): Synthesis {
    const stats: SynthesisStats = { ttfbMs: null, samples: 0, requests: 0, waitMs: 0 };
    const { inner, lane } = this;
    async function* generate(): AsyncGenerator<Int16Array> {
      const queuedAt = performance.now();
      let slot;
      try {
        slot = await lane.acquire(options.priority, options.signal);
      } catch {
        // Cut or cancelled while it waited: nothing is spoken, and nothing was asked of the engine.
        stats.waitMs = performance.now() - queuedAt;
        return;
      }
      stats.waitMs = slot.waitMs;
      try {
        const synthesis = inner.synthesize(text, options);
        for await (const pcm of synthesis) {
          Object.assign(stats, { ttfbMs: synthesis.stats.ttfbMs, samples: synthesis.stats.samples, requests: synthesis.stats.requests });
          yield pcm;
        }
        Object.assign(stats, { ttfbMs: synthesis.stats.ttfbMs, samples: synthesis.stats.samples, requests: synthesis.stats.requests });
      } finally {
        slot.release();
      }
    }
    return Object.assign(generate(), { stats });
  }

  dispose(): Promise<void> {
    return this.inner.dispose();
  }
}
