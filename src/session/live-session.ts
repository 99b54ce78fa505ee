/**
 * One live conversation over a WebSocket: audio in, turns detected by the endpointer, answers
 * spoken back at playback speed, with barge-in. When the user starts speaking while the assistant
 * speaks, outgoing audio pauses at once; if the speech lasts `minInterruptionMs` the answer is
 * cancelled (`interrupted`) and the speech becomes the next turn; if it was a blip, audio resumes
 * where it paused. Everything that stops work goes through one AbortSignal per answer.
 */
import { randomUUID } from 'node:crypto';
import type { WebSocket } from 'ws';
import { bytesToPcm16, pcm16ToFloat32 } from '../audio/pcm.js';
import { errorMessage, type Logger } from '../log/logger.js';
import type { ChunkerOptions } from '../llm/clause-chunker.js';
import type { Conversation } from '../llm/llm.js';
import type { Engines } from '../pipeline/engines.js';
import { TurnListener, type HeardTurn, type ListenEvent } from '../pipeline/listen.js';
import { turnMetrics } from '../pipeline/metrics.js';
import { respond } from '../pipeline/respond.js';
import { samplesToMs, type EndpointerOptions } from '../vad/endpointer.js';
import { OutputPacer } from './output-pacer.js';
import { MAX_AUDIO_FRAME_BYTES, SESSION_INPUT_SAMPLE_RATE, SESSION_OUTPUT_SAMPLE_RATE, clientMessageSchema, type ServerEvent, type SessionEndReason } from './protocol.js';

export interface LiveSessionOptions {
  voice: string;
  maxTokens: number;
  temperature: number;
  cfg: number;
  steps: number;
  chunker: Partial<ChunkerOptions>;
  vad: Partial<EndpointerOptions>;
  /** User speech this long during an answer cancels it; shorter is a blip and the answer resumes. */
  minInterruptionMs: number;
  /** Audio sent ahead of playback. */
  outputLeadMs: number;
  /** The session ends after this long without audio or messages from the client. */
  idleTimeoutMs: number;
  maxDurationMs: number;
  /** After the worker is asked to stop, the session gets this long to wrap up. */
  shutdownGraceMs: number;
}

export interface SessionSummary {
  reason: SessionEndReason;
  turns: number;
  audioInSamples: number;
  audioOutSamples: number;
  llmTokensIn: number;
  llmTokensOut: number;
  durationMs: number;
}

/** Unprocessed client frames that mean the VAD is not keeping up (at 200 ms a frame, about 5 s). */
const BACKLOG_WARNING_FRAMES = 25;

interface ActiveAnswer {
  turn: number;
  abort: AbortController;
  /** When the answer's first audio left for the client (set where audio is sent, paused or not). */
  firstOutAt: number | null;
}

export class LiveSession {
  readonly id = randomUUID();
  readonly #ws: WebSocket;
  readonly #engines: Engines;
  readonly #conversation: Conversation;
  readonly #options: LiveSessionOptions;
  readonly #log: Logger;
  readonly #stop = new AbortController();
  readonly #listener: TurnListener;
  readonly #pacer: OutputPacer;
  readonly #audioQueue: Int16Array[] = [];
  #pumping = false;
  #answer: ActiveAnswer | null = null;
  /** Sample where speech started while the assistant was speaking, until it is judged. */
  #bargeInAt: number | null = null;
  #turns = 0;
  #turnChain: Promise<void> = Promise.resolve();
  #idleTimer: NodeJS.Timeout | null = null;
  readonly #started = performance.now();
  readonly #totals = { audioInSamples: 0, llmTokensIn: 0, llmTokensOut: 0 };
  #endReason: SessionEndReason | null = null;
  readonly #ended: Promise<SessionSummary>;
  #resolveEnded!: (summary: SessionSummary) => void;

  constructor(
    ws: WebSocket,
    engines: Engines,
    conversation: Conversation,
    options: LiveSessionOptions,
    log: Logger,
    signal: AbortSignal,
    shutdown?: AbortSignal,
  ) {
    this.#ws = ws;
    this.#engines = engines;
    this.#conversation = conversation;
    this.#options = options;
    this.#log = log;
    this.#listener = new TurnListener(engines.vad.openStream(options.vad), engines.asr, this.#stop.signal, { joinSegments: false });
    this.#pacer = new OutputPacer((pcm) => this.#sendAudio(pcm), { sampleRate: SESSION_OUTPUT_SAMPLE_RATE, leadMs: options.outputLeadMs });
    this.#ended = new Promise((resolve) => (this.#resolveEnded = resolve));
    signal.addEventListener('abort', () => this.end('stopped'), { once: true });
    if (signal.aborted) queueMicrotask(() => this.end('stopped'));
    shutdown?.addEventListener(
      'abort',
      () => {
        // The worker is going away: warn the client, let the answer in progress finish, then end.
        this.#error('WORKER_SHUTTING_DOWN', `this worker is shutting down; the session ends in ${options.shutdownGraceMs} ms`);
        setTimeout(() => this.end('stopped'), options.shutdownGraceMs).unref();
      },
      { once: true },
    );
  }

  /** Starts the conversation; resolves when it ends, with what a bill is made of. */
  run(): Promise<SessionSummary> {
    const maxTimer = setTimeout(() => this.end('max_duration'), this.#options.maxDurationMs);
    this.#ws.on('message', (data, isBinary) => this.#onMessageGuarded(data as Buffer, isBinary));
    this.#ws.on('close', () => this.end('client_left'));
    this.#ws.on('error', (error) => this.#log.warn('session socket error', { error: error.message }));
    this.#touch();
    this.#send({
      type: 'ready',
      session_id: this.id,
      sample_rate_in: SESSION_INPUT_SAMPLE_RATE,
      sample_rate_out: SESSION_OUTPUT_SAMPLE_RATE,
      format: 'pcm16',
      voice: this.#options.voice,
    });
    this.#log.info('session started', { session_id: this.id });
    return this.#ended.finally(() => clearTimeout(maxTimer));
  }

  /** Ends the session: cuts the answer in progress, closes the socket, frees the conversation. */
  end(reason: SessionEndReason): void {
    if (this.#endReason) return;
    this.#endReason = reason;
    this.#answer?.abort.abort();
    this.#stop.abort();
    this.#pacer.dispose();
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    const summary: SessionSummary = {
      reason,
      turns: this.#turns,
      audioInSamples: this.#totals.audioInSamples,
      audioOutSamples: this.#pacer.sentSamples,
      llmTokensIn: this.#totals.llmTokensIn,
      llmTokensOut: this.#totals.llmTokensOut,
      durationMs: Math.round(performance.now() - this.#started),
    };
    this.#send({
      type: 'session_end',
      reason,
      turns: summary.turns,
      audio_in_s: Math.round((summary.audioInSamples / SESSION_INPUT_SAMPLE_RATE) * 1000) / 1000,
      audio_out_s: Math.round((summary.audioOutSamples / SESSION_OUTPUT_SAMPLE_RATE) * 1000) / 1000,
      llm_tokens_in: summary.llmTokensIn,
      llm_tokens_out: summary.llmTokensOut,
      duration_ms: summary.durationMs,
    });
    if (this.#ws.readyState === this.#ws.OPEN) this.#ws.close(1000, reason);
    // The conversation is freed once the turn in progress has let go of it.
    void this.#turnChain.finally(() => this.#conversation.dispose());
    this.#log.info('session ended', { session_id: this.id, reason, turns: summary.turns });
    this.#resolveEnded(summary);
  }

  // ---- input ---------------------------------------------------------------------------------

  /** No exception from one client's message may leave the handler: at most it ends that session. */
  #onMessageGuarded(data: Buffer, isBinary: boolean): void {
    try {
      this.#onMessage(data, isBinary);
    } catch (error) {
      this.#log.error('session message handling failed', { session_id: this.id, error: errorMessage(error) });
      this.#error('INTERNAL', errorMessage(error));
      this.end('error');
    }
  }

  #onMessage(data: Buffer, isBinary: boolean): void {
    if (this.#endReason) return;
    this.#touch();
    if (isBinary) {
      if (data.byteLength > MAX_AUDIO_FRAME_BYTES || data.byteLength % 2 !== 0) {
        this.#error('BAD_AUDIO', `audio frames must be PCM16 (even byte count) of at most ${MAX_AUDIO_FRAME_BYTES} bytes; got ${data.byteLength}`);
        return;
      }
      this.#audioQueue.push(bytesToPcm16(data));
      if (this.#audioQueue.length === BACKLOG_WARNING_FRAMES) {
        // Audio arrives faster than it is processed: turns will be detected late.
        this.#log.warn('session audio processing is falling behind real time', { session_id: this.id, frames_waiting: this.#audioQueue.length });
      }
      void this.#pump();
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(data.toString());
    } catch {
      this.#error('BAD_MESSAGE', 'text frames must be JSON messages');
      return;
    }
    const parsed = clientMessageSchema.safeParse(json);
    if (!parsed.success) {
      this.#error('BAD_MESSAGE', `unknown or malformed message: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'type'}: ${i.message}`).join('; ')}`);
      return;
    }
    const message = parsed.data;
    switch (message.type) {
      case 'ping':
        this.#send({ type: 'pong' });
        break;
      case 'end':
        this.end('client_end');
        break;
      case 'config':
        if (message.voice !== undefined && !this.#engines.tts.voices.includes(message.voice)) {
          this.#error('BAD_MESSAGE', `unknown voice "${message.voice}"; valid voices: ${this.#engines.tts.voices.join(', ')}`);
          break;
        }
        Object.assign(this.#options, {
          ...(message.voice !== undefined && { voice: message.voice }),
          ...(message.temperature !== undefined && { temperature: message.temperature }),
          ...(message.max_response_tokens !== undefined && { maxTokens: message.max_response_tokens }),
        });
        if (message.system_prompt !== undefined) this.#error('BAD_MESSAGE', 'system_prompt can only be set when the session is created');
        break;
      case 'text':
        this.#interruptIfSpeaking();
        this.#queueTurn(Promise.resolve(typedTurn(message.text)));
        break;
      case 'auth':
        break; // already authenticated
    }
  }

  /** Feeds client audio through the listener, one frame at a time, in order. */
  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (this.#audioQueue.length > 0 && !this.#endReason) {
        const pcm = this.#audioQueue.shift()!;
        this.#totals.audioInSamples += pcm.length;
        for (const event of await this.#listener.push(pcm16ToFloat32(pcm))) this.#onListen(event);
        this.#judgeBargeIn();
      }
    } catch (error) {
      if (!this.#endReason) {
        this.#log.error('session audio processing failed', { error: errorMessage(error) });
        this.#error('INTERNAL', errorMessage(error));
        this.end('error');
      }
    } finally {
      this.#pumping = false;
    }
  }

  #onListen(event: ListenEvent): void {
    switch (event.type) {
      case 'speech_start':
        this.#send({ type: 'speech_start', at_ms: samplesToMs(event.startSample) });
        if (this.#answer || this.#pacer.speaking) {
          // The user may be interrupting: stop sending at once, judge when we know more.
          this.#bargeInAt = event.startSample;
          this.#pacer.pause();
          this.#send({ type: 'paused', turn: this.#answer?.turn ?? this.#turns - 1 });
        }
        break;
      case 'speech_end':
        this.#send({ type: 'speech_end', start_ms: samplesToMs(event.startSample), end_ms: samplesToMs(event.endSample) });
        break;
      case 'turn':
        if (this.#bargeInAt !== null) {
          // Speech that ended before it became an interruption: a blip, not a turn.
          this.#bargeInAt = null;
          this.#pacer.resume();
          this.#send({ type: 'resumed', turn: this.#answer?.turn ?? this.#turns - 1 });
          event.heard.catch(() => undefined);
          break;
        }
        this.#queueTurn(event.heard);
        break;
      case 'speech_resumed':
        break;
    }
  }

  /** Speech during an answer that has lasted long enough cancels it. */
  #judgeBargeIn(): void {
    // Only speech counts: the silence after a blip must not make it an interruption.
    if (this.#bargeInAt === null || !this.#listener.endpointer.speaking) return;
    const spokenMs = samplesToMs(this.#listener.endpointer.position - this.#bargeInAt);
    if (spokenMs < this.#options.minInterruptionMs) return;
    this.#bargeInAt = null;
    this.#interruptIfSpeaking();
  }

  #interruptIfSpeaking(): void {
    if (!this.#answer && !this.#pacer.speaking) return;
    const turn = this.#answer?.turn ?? this.#turns - 1;
    this.#answer?.abort.abort();
    this.#pacer.flush();
    this.#send({ type: 'interrupted', turn });
  }

  // ---- answers -------------------------------------------------------------------------------

  /** Answers turns one after another; a new turn waits for the previous one to let go. */
  #queueTurn(heard: Promise<HeardTurn>): void {
    const turn = this.#turns++;
    this.#turnChain = this.#turnChain.then(() => this.#answerTurn(turn, heard)).catch((error: unknown) => {
      this.#log.error('session turn failed', { error: errorMessage(error) });
      this.#error('TURN_FAILED', errorMessage(error));
    });
  }

  async #answerTurn(turn: number, heardPromise: Promise<HeardTurn>): Promise<void> {
    if (this.#endReason) return;
    const heard = await heardPromise;
    if (this.#endReason) return;
    this.#send({ type: 'transcript', turn, text: heard.transcript });
    if (!heard.transcript) return;
    const abort = new AbortController();
    const answer: ActiveAnswer = { turn, abort, firstOutAt: null };
    this.#answer = answer;
    const signal = AbortSignal.any([abort.signal, this.#stop.signal]);
    const response = respond(this.#conversation, this.#engines.tts, heard.transcript, {
      signal,
      voice: this.#options.voice,
      maxTokens: this.#options.maxTokens,
      temperature: this.#options.temperature,
      cfg: this.#options.cfg,
      steps: this.#options.steps,
      chunker: this.#options.chunker,
    });
    this.#send({ type: 'response_start', turn });
    try {
      for await (const item of response.items) {
        if (signal.aborted) break;
        if (item.kind === 'text') this.#send({ type: 'text', turn, delta: item.delta });
        else this.#pacer.enqueue(item.pcm);
      }
      if (!signal.aborted) await this.#pacer.drained();
    } finally {
      if (this.#answer?.turn === turn) this.#answer = null;
    }
    const metrics = turnMetrics(heard, response.timings, answer.firstOutAt, signal.aborted);
    this.#totals.llmTokensIn += metrics.llm_tokens_in;
    this.#totals.llmTokensOut += metrics.llm_tokens_out;
    this.#send({ type: 'metrics', turn, ...metrics });
  }

  // ---- output --------------------------------------------------------------------------------

  #send(event: ServerEvent): void {
    if (this.#ws.readyState === this.#ws.OPEN) this.#ws.send(JSON.stringify(event));
  }

  /** Called by the pacer for each chunk as it leaves: the audio in it belongs to the current answer. */
  #sendAudio(pcm: Int16Array): void {
    if (this.#answer) this.#answer.firstOutAt ??= performance.now();
    if (this.#ws.readyState === this.#ws.OPEN) this.#ws.send(new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength));
  }

  #error(code: string, message: string): void {
    this.#send({ type: 'error', code, message });
  }

  /** The idle clock restarts on every client message, and never runs out while an answer is playing. */
  #touch(): void {
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => {
      if (this.#answer || this.#pacer.speaking) this.#touch();
      else this.end('idle_timeout');
    }, this.#options.idleTimeoutMs);
  }
}

/** A typed turn has no audio: its "heard" record carries the text and zero listening time. */
function typedTurn(text: string): HeardTurn {
  const now = performance.now();
  return { segments: [], transcript: text, vadMs: 0, endpointMs: 0, asrMs: 0, asrCriticalMs: 0, asrSpeculative: false, closedAt: now, transcriptAt: now };
}
