/**
 * LLM and TTS doubles that take a set time and record every call and whether it ran (reached the
 * engine with its signal not yet fired), like RecordingAsrDouble for ASR. For tests of what the
 * scheduler lets run: work of a conversation that left, was cut or cancelled must never run.
 */
import type { ChatMessage, Conversation, Llm, ReplyPart, ReplyStats, RespondOptions } from '../../src/llm/llm.js';
import type { Tts, TtsStream, TtsStreamOptions, TtsStreamStats } from '../../src/tts/tts.js';

export interface RecordedCall {
  /** The user text (LLM) or the text to speak (TTS). */
  text: string;
  /** It got as far as the engine: generation or synthesis started. */
  ran: boolean;
  startedAt: number | null;
  endedAt: number | null;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Answers every turn with `words` words, `wordMs` apart; an abort ends it quietly within a word. */
export class RecordingLlmDouble implements Llm {
  readonly calls: RecordedCall[] = [];
  constructor(readonly options: { words?: number; wordMs?: number } = {}) {}

  async openConversation(): Promise<Conversation> {
    return new RecordingConversationDouble(this);
  }

  async dispose(): Promise<void> {}
}

class RecordingConversationDouble implements Conversation {
  history: ChatMessage[] = [];
  lastStats: ReplyStats | null = null;
  constructor(readonly llm: RecordingLlmDouble) {}

  async *reply(userText: string, options: RespondOptions): AsyncGenerator<string> {
    for await (const part of this.respond(userText, options)) if (part.type === 'text') yield part.text;
  }

  async *respond(userText: string | null, options: RespondOptions): AsyncGenerator<ReplyPart> {
    const call: RecordedCall = { text: userText ?? '', ran: false, startedAt: null, endedAt: null };
    this.llm.calls.push(call);
    this.history.push({ role: 'user', content: userText ?? '' });
    let said = '';
    try {
      if (options.signal.aborted) return;
      call.ran = true;
      call.startedAt = performance.now();
      const { words = 6, wordMs = 20 } = this.llm.options;
      for (let i = 0; i < words; i++) {
        await sleep(wordMs);
        if (options.signal.aborted) return;
        const text = `${userText ?? 'more'}-${i}${i === words - 1 ? '.' : ''} `;
        said += text;
        yield { type: 'text', text };
      }
    } finally {
      call.endedAt = performance.now();
      this.history.push({ role: 'assistant', content: said });
      this.lastStats = { inputTokens: 1, outputTokens: said.split(' ').length - 1, ttftMs: null, aborted: options.signal.aborted, droppedMessages: 0, rejectedFunctionCalls: 0 };
    }
  }

  addFunctionCallOutput(): void {}

  restore(history: readonly ChatMessage[]): void {
    this.history = [...history];
  }

  dispose(): void {}
}

/**
 * A TTS whose streams speak `chunks` chunks of silence, `chunkMs` apart, from when they are read; an abort
 * ends one within a chunk. A call is recorded when the stream is opened on it, its text as pushed.
 */
export class RecordingTtsDouble implements Tts {
  readonly voices = ['recording'];
  readonly defaultVoice = 'recording';
  readonly calls: RecordedCall[] = [];
  constructor(readonly options: { chunks?: number; chunkMs?: number } = {}) {}

  open(options: TtsStreamOptions): TtsStream {
    const stats: TtsStreamStats = { ttfbMs: null, firstTextAt: null, queued: false, queueWaitMs: 0, samples: 0, spokenText: '' };
    const call: RecordedCall = { text: '', ran: !options.signal.aborted, startedAt: performance.now(), endedAt: null };
    this.calls.push(call);
    const { chunks = 3, chunkMs = 20 } = this.options;
    async function* generate(): AsyncGenerator<Int16Array> {
      try {
        for (let i = 0; i < chunks; i++) {
          await sleep(chunkMs);
          if (options.signal.aborted) return;
          stats.ttfbMs ??= performance.now() - call.startedAt!;
          stats.samples += 480;
          yield new Int16Array(480);
        }
      } finally {
        call.endedAt = performance.now();
      }
    }
    return Object.assign(generate(), {
      stats,
      push: (text: string) => {
        call.text += text;
        stats.spokenText += text;
        stats.firstTextAt ??= performance.now();
      },
      end: () => {},
      promote: () => {},
    });
  }

  async dispose(): Promise<void> {}
}
