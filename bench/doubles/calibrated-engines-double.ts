/**
 * Engine DOUBLES for the calibrated L4 latency benchmark: ASR, LLM and TTS that do no inference but
 * take the time the L4 calibration table (l4-calibration.ts) says the real models take, on one
 * simulated GPU. While the LLM decodes and the TTS synthesizes at the same time, both progress at
 * 1 / sharedGpuFactor of their speed (work is done in 5 ms slices, so only the overlap is slowed).
 *
 * The ASR double knows what was said: every clip the benchmark streams is registered with the text
 * of its parts, and a transcription request is matched to its clip by an exact run of samples, so it
 * returns the words of exactly the parts the audio covers (what Whisper would hear, punctuation as
 * written in the script). These doubles live under bench/ and never ship.
 */
import type { Asr, Transcript } from '../../src/asr/asr.js';
import { float32ToPcm16, pcm16ToFloat32 } from '../../src/audio/pcm.js';
import type { ChatMessage, Conversation, ConversationOptions, Llm, ReplyOptions, ReplyPart, ReplyStats, RespondOptions } from '../../src/llm/llm.js';
import type { Tts, TtsStream, TtsStreamOptions, TtsStreamStats } from '../../src/tts/tts.js';
import { AsyncQueue } from '../../src/util/async-queue.js';
import { TTS_FRAME_SAMPLES, ttsStepRatio, type BatchScaling, type ModelTimes } from './l4-calibration.js';

const SLICE_MS = 5;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One GPU shared by the LLM and the TTS: work runs slower while the other kind runs too. Progress is
 * counted from elapsed wall time, so a timer that fires late (a busy event loop) does not add its
 * lateness to every later step: each milestone is reached at its ideal time plus at most one lag.
 */
export class SimulatedGpu {
  readonly active = { llm: 0, tts: 0, asr: 0 };
  /**
   * `scaling` (the capacity benchmark): a job also slows down with the jobs of its own kind running
   * at once (L4_BATCH_SCALING). Without it, as in the latency benchmark, only the LLM/TTS overlap counts.
   */
  constructor(
    readonly times: ModelTimes,
    readonly scaling?: BatchScaling,
  ) {}

  /** Starts a job of `kind`; `until(workMs)` waits for its cumulative progress; `end()` frees the GPU. */
  start(kind: 'llm' | 'tts' | 'asr', signal?: AbortSignal): GpuJob {
    return new GpuJob(this, kind, signal);
  }
}

export class GpuJob {
  #progress = 0;
  #last = performance.now();
  #ended = false;
  readonly #other: 'llm' | 'tts' | null;

  constructor(
    readonly gpu: SimulatedGpu,
    readonly kind: 'llm' | 'tts' | 'asr',
    readonly signal?: AbortSignal,
  ) {
    // The table's sharing factor is for the LLM and the TTS; it gives none for Whisper.
    this.#other = kind === 'llm' ? 'tts' : kind === 'tts' ? 'llm' : null;
    gpu.active[kind]++;
  }

  get #factor(): number {
    const shared = this.#other !== null && this.gpu.active[this.#other] > 0 ? this.gpu.times.sharedGpuFactor : 1;
    return shared * (this.gpu.scaling?.[this.kind](this.gpu.active[this.kind]) ?? 1);
  }

  #advance(): void {
    const now = performance.now();
    this.#progress += (now - this.#last) / this.#factor;
    this.#last = now;
  }

  /** Resolves once the job has done `workMs` of work in all (or its signal fired). */
  async until(workMs: number): Promise<void> {
    this.#advance();
    while (this.#progress < workMs && !this.signal?.aborted) {
      await sleep(Math.min(SLICE_MS, (workMs - this.#progress) * this.#factor));
      this.#advance();
    }
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.gpu.active[this.kind]--;
  }
}

export interface ScriptedClip {
  /** The clip as the server will see it (after the PCM16 round trip). */
  samples: Float32Array;
  /** Its parts in order, positions in samples within the clip. */
  parts: { startSample: number; endSample: number; text: string }[];
}

/** Clips the benchmark streams, so the ASR double can tell which words a piece of audio holds. */
export class TranscriptOracle {
  readonly #clips: ScriptedClip[] = [];

  /** Registers a clip from its parts' audio (16 kHz float32) and texts; returns it as the server sees it. */
  register(parts: { samples: Float32Array; text: string }[]): ScriptedClip {
    const total = parts.reduce((n, p) => n + p.samples.length, 0);
    const joined = new Float32Array(total);
    const spans: ScriptedClip['parts'] = [];
    let at = 0;
    for (const part of parts) {
      joined.set(part.samples, at);
      if (part.text) spans.push({ startSample: at, endSample: at + part.samples.length, text: part.text });
      at += part.samples.length;
    }
    const clip = { samples: pcm16ToFloat32(float32ToPcm16(joined)), parts: spans };
    this.#clips.push(clip);
    return clip;
  }

  /** The words of the parts whose middle lies inside `audio`; '' when it matches no clip. */
  textOf(audio: Float32Array): string {
    const first = audio.findIndex((x) => Math.abs(x) > 0.003);
    if (first < 0 || first + 32 > audio.length) return '';
    const pattern = audio.subarray(first, first + 32);
    for (const clip of this.#clips) {
      const found = indexOf(clip.samples, pattern);
      if (found < 0) continue;
      const start = found - first;
      const end = start + audio.length;
      return clip.parts
        .filter((p) => (p.startSample + p.endSample) / 2 >= start && (p.startSample + p.endSample) / 2 <= end)
        .map((p) => p.text)
        .join(' ');
    }
    return '';
  }
}

function indexOf(haystack: Float32Array, needle: Float32Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    if (haystack[i] !== needle[0]) continue;
    for (let j = 1; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** Whisper small.en fp32 on the L4: mel + encoder (trimmed window) + one decoder step per token. */
export class CalibratedAsrDouble implements Asr {
  /** Decodes asked for and their calibrated time in all (partials, speculations and finals alike). */
  readonly spent = { decodes: 0, ms: 0 };

  constructor(
    readonly gpu: SimulatedGpu,
    readonly oracle: TranscriptOracle,
  ) {}

  async transcribe(samples: Float32Array, options: { signal?: AbortSignal } = {}): Promise<Transcript> {
    const started = performance.now();
    const seconds = samples.length / 16_000;
    const t = this.gpu.times;
    const ms = t.asrMelMs + t.asrEncoderBaseMs + 1.125 * seconds + (3.3 * seconds + 2) * t.asrDecoderStepMs;
    this.spent.decodes++;
    this.spent.ms += ms;
    // Whisper runs beside the LLM and TTS in the real worker; the table gives no factor for it.
    // With batch scaling (capacity benchmark), decodes running at once slow each other.
    if (this.gpu.scaling) {
      const job = this.gpu.start('asr');
      try {
        await job.until(ms);
      } finally {
        job.end();
      }
    } else {
      await sleep(ms);
    }
    options.signal?.throwIfAborted();
    return { text: this.oracle.textOf(samples), asrMs: performance.now() - started, audioMs: seconds * 1000, windows: 1 };
  }

  dispose(): void {}
}

/** Tokens of a text as the double counts them: one per word (punctuation rides with its word). */
const tokensOf = (text: string) => text.split(/(?<=\s)/).filter(Boolean);

/** Qwen2.5-1.5B Q4_K_M on the L4: prompt evaluation, then decode per token; history and rollback like the engine. */
export class CalibratedLlmDouble implements Llm {
  constructor(
    readonly gpu: SimulatedGpu,
    readonly answer: (userText: string) => string,
  ) {}

  async openConversation(options: ConversationOptions = {}): Promise<Conversation> {
    return new CalibratedConversationDouble(this, options.history ?? []);
  }

  async dispose(): Promise<void> {}
}

class CalibratedConversationDouble implements Conversation {
  history: ChatMessage[];
  lastStats: ReplyStats | null = null;

  constructor(
    readonly llm: CalibratedLlmDouble,
    history: readonly ChatMessage[],
  ) {
    this.history = [...history];
  }

  async *reply(userText: string, options: ReplyOptions): AsyncGenerator<string> {
    const t = this.llm.gpu.times;
    const started = performance.now();
    // With the KV cache kept, only the new turn is evaluated: its words plus the chat template's markers.
    const promptTokens = tokensOf(userText).length + 12;
    this.history.push({ role: 'user', content: userText });
    let said = '';
    let outputTokens = 0;
    let ttftMs: number | null = null;
    const job = this.llm.gpu.start('llm', options.signal);
    try {
      let work = t.llmPromptFixedMs + (promptTokens / t.llmPromptTokensPerS) * 1000;
      await job.until(work);
      for (const token of tokensOf(this.llm.answer(userText))) {
        if (options.signal.aborted || (options.maxTokens !== undefined && outputTokens >= options.maxTokens)) break;
        work += t.llmDecodeMsPerToken;
        await job.until(work);
        if (options.signal.aborted) break;
        ttftMs ??= performance.now() - started;
        said += token;
        outputTokens++;
        yield token;
      }
    } finally {
      job.end();
      this.history.push({ role: 'assistant', content: said });
      this.lastStats = { inputTokens: promptTokens, outputTokens, ttftMs, aborted: options.signal.aborted, droppedMessages: 0, rejectedFunctionCalls: 0 };
    }
  }

  /** The benchmark's turns offer no tools: the same text as parts. */
  async *respond(userText: string | null, options: RespondOptions): AsyncGenerator<ReplyPart> {
    for await (const text of this.reply(userText ?? '', options)) yield { type: 'text', text };
  }

  addFunctionCallOutput(callId: string): void {
    throw new Error(`the calibrated LLM double makes no function calls (got an output for ${callId})`);
  }

  restore(history: readonly ChatMessage[]): void {
    this.history = [...history];
  }

  dispose(): void {}
}

/** Words per 5-token text window (Qwen2.5's tokenizer: about 1.25 tokens per English word). */
const WINDOW_WORDS = 4;
/** Latent frames the model makes per text window while text remains (upstream's TTS_SPEECH_WINDOW_SIZE). */
const FRAMES_PER_WINDOW = 6;
/** About 2.25 latent frames (0.3 s of speech) per word. */
const FRAMES_PER_WORD = 2.25;

/**
 * Our TTS engine (VibeVoice-Realtime-0.5B, tts-server/) on the L4, as its server runs it: text pushed
 * into open streams; every stream that can advance does so in one batched step (a latent frame each,
 * plus a text window for those that need one) whose time is the one-stream step times the measured
 * batch ratio; a stream speaks as soon as its first window (5 tokens) is in, or at its end, and waits
 * when speech catches up with its text. A stream that opens mid-step joins at the next step.
 */
export class CalibratedTtsDouble implements Tts {
  readonly voices = ['en-Carter_man'];
  readonly defaultVoice = 'en-Carter_man';
  readonly #streams = new Set<CalibratedTtsStream>();
  #stepping = false;
  /** Steps run and streams per step, for the bench's report. */
  readonly steps = { count: 0, streams: 0 };

  constructor(readonly gpu: SimulatedGpu) {}

  open(options: TtsStreamOptions): TtsStream {
    const stream = new CalibratedTtsStream(options.signal, () => this.#kick());
    this.#streams.add(stream);
    return stream;
  }

  /** Starts the step loop unless it runs. */
  #kick(): void {
    if (!this.#stepping) void this.#run();
  }

  async #run(): Promise<void> {
    this.#stepping = true;
    try {
      for (;;) {
        for (const stream of this.#streams) if (stream.finished) this.#streams.delete(stream);
        const batch = [...this.#streams].filter((s) => s.canStep());
        if (batch.length === 0) return;
        const t = this.gpu.times;
        const windows = batch.some((s) => s.needsWindow());
        const stepMs = t.ttsFrameMs * ttsStepRatio(t, batch.length) + (windows ? t.ttsWindowMs : 0);
        const job = this.gpu.start('tts');
        try {
          await job.until(stepMs);
        } finally {
          job.end();
        }
        this.steps.count++;
        this.steps.streams += batch.length;
        for (const stream of batch) stream.step();
      }
    } finally {
      this.#stepping = false;
    }
  }

  async dispose(): Promise<void> {}
}

class CalibratedTtsStream implements TtsStream {
  readonly stats: TtsStreamStats = { ttfbMs: null, firstTextAt: null, queued: false, queueWaitMs: 0, samples: 0, spokenText: '' };
  readonly #audio: AsyncQueue<Int16Array>;
  #text = '';
  #ended = false;
  #stopped = false;
  #windows = 0;
  #frames = 0;

  constructor(
    readonly signal: AbortSignal,
    readonly kick: () => void,
  ) {
    this.#audio = new AsyncQueue<Int16Array>(() => this.#stop());
    if (signal.aborted) this.#stop();
    signal.addEventListener('abort', () => this.#stop(), { once: true });
  }

  get finished(): boolean {
    return this.#stopped;
  }

  /** Whole words pushed so far (the server holds back a partial last word until more text or the end). */
  get #words(): number {
    const words = this.#text.split(/\s+/).filter(Boolean).length;
    return this.#ended || /\s$/.test(this.#text) ? words : Math.max(0, words - 1);
  }

  get #totalFrames(): number {
    return Math.max(2, Math.ceil(this.#words * FRAMES_PER_WORD));
  }

  /** The next frame needs another text window first. */
  needsWindow(): boolean {
    return this.#frames >= this.#windows * FRAMES_PER_WINDOW;
  }

  canStep(): boolean {
    if (this.#stopped) return false;
    if (!this.needsWindow()) return !this.#ended || this.#frames < this.#totalFrames;
    const wordsLeft = this.#words - this.#windows * WINDOW_WORDS;
    if (wordsLeft >= WINDOW_WORDS || (this.#ended && wordsLeft > 0)) return true;
    // Text all spoken into windows and ended: speech goes on to its end without more windows.
    return this.#ended && this.#words > 0 && this.#frames < this.#totalFrames;
  }

  step(): void {
    if (this.#stopped) return;
    if (this.needsWindow() && this.#words - this.#windows * WINDOW_WORDS > 0) this.#windows++;
    const pcm = tone(TTS_FRAME_SAMPLES, this.#frames++);
    this.stats.ttfbMs ??= performance.now() - this.stats.firstTextAt!;
    this.stats.samples += pcm.length;
    this.#audio.push(pcm);
    if (this.#ended && this.#frames >= this.#totalFrames) {
      this.#stopped = true;
      this.#audio.end();
    }
  }

  push(text: string): void {
    if (this.#ended || this.#stopped || !text) return;
    this.#text += text;
    this.stats.spokenText += text;
    // As our client counts it: from the first whole word on its way to the engine.
    if (this.#words > 0) this.stats.firstTextAt ??= performance.now();
    this.kick();
  }

  end(): void {
    if (this.#ended || this.#stopped) return;
    this.#ended = true;
    if (this.#words > 0) this.stats.firstTextAt ??= performance.now();
    if (this.#words === 0) this.#stop();
    else this.kick();
  }

  promote(): void {}

  [Symbol.asyncIterator](): AsyncIterator<Int16Array> {
    return this.#audio[Symbol.asyncIterator]();
  }

  #stop(): void {
    this.#stopped = true;
    this.#audio.end();
  }
}

function tone(samples: number, frame: number): Int16Array {
  return Int16Array.from({ length: samples }, (_, n) => Math.round(6_000 * Math.sin((2 * Math.PI * 220 * (n + frame * samples)) / 24_000)));
}
