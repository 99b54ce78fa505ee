/**
 * Our own live-session wire protocol (`/ws`, see protocol.ts) over the session core: binary frames
 * of 16 kHz PCM16 and JSON messages in, JSON events and binary 24 kHz PCM16 out. This adapter only
 * decodes and encodes; turns, barge-in, pacing, answers and limits live in `SessionCore`.
 */
import type { WebSocket } from 'ws';
import { bytesToPcm16 } from '../audio/pcm.js';
import { errorMessage, type Logger } from '../log/logger.js';
import type { Conversation } from '../llm/llm.js';
import type { Engines } from '../pipeline/engines.js';
import { MAX_AUDIO_FRAME_BYTES, SESSION_INPUT_SAMPLE_RATE, SESSION_OUTPUT_SAMPLE_RATE, clientMessageSchema, type ServerEvent } from './protocol.js';
import { SessionCore, billedFigures, type CoreEvent, type SessionCoreOptions, type SessionSummary } from './session-core.js';

export type { SessionSummary } from './session-core.js';
export type LiveSessionOptions = SessionCoreOptions;

export class LiveSession {
  readonly #ws: WebSocket;
  readonly #core: SessionCore;
  readonly #log: Logger;

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
    this.#log = log;
    this.#core = new SessionCore(
      engines,
      conversation,
      options,
      log,
      {
        event: (event) => this.#onCoreEvent(event),
        audio: (pcm) => {
          if (this.#ws.readyState === this.#ws.OPEN) this.#ws.send(new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength));
        },
        ended: (summary) => this.#onEnded(summary),
        unreadBytes: () => this.#ws.bufferedAmount,
      },
      signal,
      shutdown,
    );
  }

  get id(): string {
    return this.#core.id;
  }

  /** Starts the conversation; resolves when it ends, with what a bill is made of. */
  run(): Promise<SessionSummary> {
    this.#ws.on('message', (data, isBinary) => this.#onMessageGuarded(data as Buffer, isBinary));
    this.#ws.on('close', () => this.#core.end('client_left'));
    this.#ws.on('error', (error) => this.#log.warn('session socket error', { error: error.message }));
    const ended = this.#core.run();
    // The client may have left while the session was being set up (the LLM conversation opened).
    if (this.#ws.readyState !== this.#ws.OPEN) this.#core.end('client_left');
    this.#send({
      type: 'ready',
      session_id: this.#core.id,
      sample_rate_in: SESSION_INPUT_SAMPLE_RATE,
      sample_rate_out: SESSION_OUTPUT_SAMPLE_RATE,
      format: 'pcm16',
      voice: this.#core.voice,
    });
    return ended;
  }

  // ---- client -> core ------------------------------------------------------------------------

  /** No exception from one client's message may leave the handler: at most it ends that session. */
  #onMessageGuarded(data: Buffer, isBinary: boolean): void {
    try {
      this.#onMessage(data, isBinary);
    } catch (error) {
      this.#log.error('session message handling failed', { session_id: this.#core.id, error: errorMessage(error) });
      this.#error('INTERNAL', errorMessage(error));
      this.#core.end('error');
    }
  }

  #onMessage(data: Buffer, isBinary: boolean): void {
    if (this.#core.isEnded) return;
    this.#core.touch();
    if (isBinary) {
      if (data.byteLength > MAX_AUDIO_FRAME_BYTES || data.byteLength % 2 !== 0) {
        this.#error('BAD_AUDIO', `audio frames must be PCM16 (even byte count) of at most ${MAX_AUDIO_FRAME_BYTES} bytes; got ${data.byteLength}`);
        return;
      }
      this.#core.pushAudio(bytesToPcm16(data));
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
        this.#core.end('client_end');
        break;
      case 'config':
        if (message.voice !== undefined && !this.#core.voices.includes(message.voice)) {
          this.#error('BAD_MESSAGE', `unknown voice "${message.voice}"; valid voices: ${this.#core.voices.join(', ')}`);
          break;
        }
        this.#core.configure({
          ...(message.voice !== undefined && { voice: message.voice }),
          ...(message.temperature !== undefined && { temperature: message.temperature }),
          ...(message.max_response_tokens !== undefined && { maxTokens: message.max_response_tokens }),
        });
        if (message.system_prompt !== undefined) this.#error('BAD_MESSAGE', 'system_prompt can only be set when the session is created');
        break;
      case 'text':
        this.#core.submitText(message.text);
        break;
      case 'auth':
        break; // already authenticated
    }
  }

  // ---- core -> client ------------------------------------------------------------------------

  #onCoreEvent(event: CoreEvent): void {
    switch (event.type) {
      case 'speech_start':
        return this.#send({ type: 'speech_start', at_ms: event.atMs });
      case 'speech_end':
        return this.#send({ type: 'speech_end', start_ms: event.startMs, end_ms: event.endMs });
      case 'paused':
      case 'resumed':
      case 'interrupted':
        return this.#send({ type: event.type, turn: event.turn });
      case 'transcript':
        return this.#send({ type: 'transcript', turn: event.turn, text: event.text });
      case 'partial_transcript':
        return this.#send({ type: 'partial_transcript', turn: event.turn, text: event.text });
      case 'answer_start':
        return this.#send({ type: 'response_start', turn: event.turn });
      case 'answer_text':
        return this.#send({ type: 'text', turn: event.turn, delta: event.delta });
      case 'answer_done':
        // A failed answer is reported as the error it was, without metrics.
        if (event.status === 'failed') return this.#error('TURN_FAILED', event.error ?? 'the answer failed');
        return this.#send({ type: 'metrics', turn: event.turn, ...event.metrics });
      case 'error':
        return this.#error(event.code, event.message);
    }
  }

  #onEnded(summary: SessionSummary): void {
    this.#send({
      type: 'session_end',
      reason: summary.reason,
      ...billedFigures(summary),
      duration_ms: summary.durationMs,
    });
    if (this.#ws.readyState === this.#ws.OPEN) this.#ws.close(1000, summary.reason);
  }

  #send(event: ServerEvent): void {
    if (this.#ws.readyState === this.#ws.OPEN) this.#ws.send(JSON.stringify(event));
  }

  #error(code: string, message: string): void {
    this.#send({ type: 'error', code, message });
  }
}
