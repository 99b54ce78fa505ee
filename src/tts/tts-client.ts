/**
 * Client of our TTS server's protocol (docs/tts-protocol.md): one WebSocket per stream. The stream
 * opens with its voice and priority; the LLM's text goes in as it is written, normalised for speech
 * on the way (SpeakableStream); PCM16 24 kHz frames come back while text still arrives. Aborting
 * (barge-in, a discarded preemptive answer) sends `cancel` and closes. The server queues streams
 * when its slots are full, so nothing here retries a stream the server took: a named server error fails
 * the stream with its code, a server that dies or drops the connection fails it at once, and one that
 * goes silent after the stream's text ended (a hung engine) fails it after `stallMs`. Only a stream that
 * never reached the server (it died just before) waits for the restart and tries once more.
 */
import WebSocket from 'ws';
import { InvalidInputError, S2sError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { AsyncQueue } from '../util/async-queue.js';
import type { TtsServerInfo } from './sidecar.js';
import { SpeakableStream } from './speakable.js';
import type { Tts, TtsStream, TtsStreamOptions, TtsStreamStats } from './tts.js';

export interface TtsClientOptions {
  /** Default: the server's. */
  defaultVoice?: string;
  cfg: number;
  steps: number;
  /**
   * Once a stream has all its text (`end`), the server owes it audio or `done`: silence from it this
   * long means the engine hung, and the stream fails (TTS_STALLED) instead of holding its answer and its
   * slot for ever. Not counted while the stream waits for a slot. Real steps take tens of ms on a GPU.
   */
  stallMs: number;
}

export const DEFAULT_CLIENT_OPTIONS: TtsClientOptions = { cfg: 1.5, steps: 5, stallMs: 15_000 };

/** Before a stream that found its server gone retries: time for the sidecar to see the exit (then it waits for the restart). */
const RECONNECT_DELAY_MS = 200;

/** The server's error codes (docs/tts-protocol.md). */
export type TtsServerErrorCode = 'bad_message' | 'unknown_voice' | 'bad_option' | 'text_after_end' | 'text_too_long' | 'unspeakable' | 'engine_error';

/** A stream failed with a named error from the server: `code` is TTS_ + its code in capitals (TTS_UNKNOWN_VOICE). */
export class TtsStreamError extends S2sError {
  readonly serverCode: string;

  constructor(serverCode: string, message: string) {
    // A model step that failed may succeed again; a client mistake will not.
    super(`TTS_${serverCode.toUpperCase()}`, `TTS stream failed (${serverCode}): ${message}`, { retryable: serverCode === 'engine_error' });
    this.serverCode = serverCode;
  }
}

/** The server the client speaks to: the sidecar the worker runs (or, in tests, one attached to). */
export interface TtsServerHandle {
  readonly config: { readonly host: string; readonly port: number };
  /** Its /config, once it answered. */
  readonly server: TtsServerInfo;
  /** Resolves when the server is up (at once, unless it is restarting); rejects when it was stopped. */
  ready(): Promise<TtsServerInfo>;
  /** Called when the server process dies. */
  onCrash(listener: (error: S2sError) => void): () => void;
  stop(): Promise<void>;
}

export class TtsServerClient implements Tts {
  readonly #sidecar: TtsServerHandle;
  readonly #options: TtsClientOptions;
  readonly #log: Logger;

  constructor(sidecar: TtsServerHandle, options: Partial<TtsClientOptions>, log: Logger) {
    this.#sidecar = sidecar;
    this.#options = { ...DEFAULT_CLIENT_OPTIONS, ...options };
    this.#log = log;
  }

  get voices(): readonly string[] {
    return this.#sidecar.server.voices;
  }

  get defaultVoice(): string {
    return this.#options.defaultVoice ?? this.#sidecar.server.defaultVoice;
  }

  open(options: TtsStreamOptions): TtsStream {
    const voice = options.voice ?? this.defaultVoice;
    // Refused here, before a connection, with the list a client can choose from.
    if (!this.voices.includes(voice)) throw new InvalidInputError(`unknown voice "${voice}"; valid voices: ${this.voices.join(', ')}`);
    const open: ClientMessage = { type: 'open', voice, cfg: options.cfg ?? this.#options.cfg, steps: options.steps ?? this.#options.steps, priority: options.priority ?? 'confirmed' };
    return new ServerStream(this.#sidecar, open, options.signal, this.#log, this.#options.stallMs);
  }

  async dispose(): Promise<void> {
    await this.#sidecar.stop();
  }
}

type ClientMessage = { type: 'open'; voice: string; cfg: number; steps: number; priority: string } | { type: 'text'; text: string } | { type: 'promote' } | { type: 'end' } | { type: 'cancel' };

class ServerStream implements TtsStream {
  readonly stats: TtsStreamStats = { ttfbMs: null, firstTextAt: null, queued: false, queueWaitMs: 0, samples: 0, spokenText: '' };
  readonly #sidecar: TtsServerHandle;
  readonly #signal: AbortSignal;
  readonly #log: Logger;
  readonly #speakable = new SpeakableStream();
  /** Messages waiting for the socket to open; `open` is always the first. */
  readonly #outbox: ClientMessage[];
  #ws: WebSocket | null = null;
  #ended = false;
  /** done, error, failure or cancel: nothing more goes out or comes in. */
  #finished = false;
  #openedAt: number | null = null;
  readonly #stallMs: number;
  /** Armed from `end` while the server owes audio; reset by each message from it. */
  #stallTimer: NodeJS.Timeout | null = null;
  #unsubscribeCrash: (() => void) | null = null;
  readonly #onAbort = () => this.#cancel();
  /** The audio, for the reader; the reader stopping early cancels the stream. */
  readonly #audioOut = new AsyncQueue<Int16Array>(() => this.#cancel());

  constructor(sidecar: TtsServerHandle, open: ClientMessage, signal: AbortSignal, log: Logger, stallMs: number) {
    this.#sidecar = sidecar;
    this.#signal = signal;
    this.#log = log;
    this.#stallMs = stallMs;
    this.#outbox = [open];
    if (signal.aborted) {
      this.#finished = true;
      this.#audioOut.end();
      return;
    }
    signal.addEventListener('abort', this.#onAbort, { once: true });
    void this.#connect();
  }

  push(text: string): void {
    if (this.#ended || this.#finished) return;
    const speakable = this.#speakable.push(text);
    if (speakable) this.#sendText(speakable);
  }

  [Symbol.asyncIterator](): AsyncIterator<Int16Array> {
    return this.#audioOut[Symbol.asyncIterator]();
  }

  end(): void {
    if (this.#ended || this.#finished) return;
    this.#ended = true;
    const rest = this.#speakable.end();
    if (rest) this.#sendText(rest);
    if (this.stats.firstTextAt === null) {
      // Nothing speakable was ever said (an answer that only called a function): no stream to speak.
      this.#finish();
      this.#close('cancel');
      this.#audioOut.end();
      return;
    }
    this.#send({ type: 'end' });
    this.#watchForStall();
  }

  /**
   * (Re)starts the stall timer once the stream has ended, unless it still waits for a slot. Called for
   * every message from the server: an armed timer is restarted in place (`refresh`), not made anew.
   */
  #watchForStall(): void {
    if (this.#finished || !this.#ended || (this.stats.queued && this.stats.ttfbMs === null)) {
      if (this.#stallTimer) clearTimeout(this.#stallTimer);
      this.#stallTimer = null;
      return;
    }
    if (this.#stallTimer) {
      this.#stallTimer.refresh();
      return;
    }
    this.#stallTimer = setTimeout(() => {
      this.#log.warn('TTS stream stalled: no audio from the server', { stallMs: this.#stallMs, audioSamples: this.stats.samples });
      this.#fail(new S2sError('TTS_STALLED', `TTS server sent nothing for ${this.#stallMs} ms after the stream's text ended (the engine may be hung)`, { retryable: true }));
    }, this.#stallMs);
    // A hung stream must not keep the process alive on its own.
    this.#stallTimer.unref();
  }

  promote(): void {
    if (!this.#finished) this.#send({ type: 'promote' });
  }

  #sendText(text: string): void {
    this.stats.firstTextAt ??= performance.now();
    this.stats.spokenText += text;
    this.#send({ type: 'text', text });
  }

  #send(message: ClientMessage): void {
    const ws = this.#ws;
    if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
    else this.#outbox.push(message);
  }

  /**
   * Opens the socket once the server is up. A server that dies just before the stream reaches it (the
   * sidecar has not seen the exit yet: refused, or its crash notice comes first) is waited for once:
   * the stream retries after its restart instead of failing a turn that never reached it.
   */
  async #connect(retried = false): Promise<void> {
    try {
      // A restarting server is waited for; one that was stopped fails the stream.
      await this.#sidecar.ready();
    } catch (error) {
      this.#fail(error);
      return;
    }
    // Aborted while the server was (re)starting: a listener added now would never run.
    if (this.#finished) return;
    const { host, port } = this.#sidecar.config;
    const ws = new WebSocket(`ws://${host}:${port}/v1/stream`, { perMessageDeflate: false });
    this.#ws = ws;
    let connected = false;
    const lost = (error: S2sError) => {
      if (connected || retried || this.#finished) {
        this.#fail(error);
        return;
      }
      // Never connected: drop this socket (nothing was sent on it) and try once more after the restart.
      this.#unsubscribeCrash?.();
      this.#unsubscribeCrash = null;
      ws.removeAllListeners();
      ws.on('error', () => undefined);
      ws.terminate();
      this.#ws = null;
      this.#log.debug('TTS server gone before the stream reached it; retrying after its restart', { error: error.message });
      setTimeout(() => void this.#connect(true), RECONNECT_DELAY_MS).unref();
    };
    this.#unsubscribeCrash = this.#sidecar.onCrash((error) => lost(new S2sError('TTS_CRASHED', `TTS server died mid-stream: ${error.message}`, { retryable: true })));
    ws.on('open', () => {
      connected = true;
      if (this.#finished) return;
      for (const message of this.#outbox.splice(0)) ws.send(JSON.stringify(message));
    });
    ws.on('message', (data, isBinary) => {
      if (this.#finished) return;
      if (isBinary) this.#audio(data as Buffer);
      else this.#event(data.toString());
      this.#watchForStall();
    });
    ws.on('close', (code, reason) => {
      // A close before `done` or `error`: the server died or dropped us. Fail now, never hang.
      lost(new S2sError('TTS_CONNECTION_LOST', `TTS server closed the stream before it finished (code ${code}${reason.length ? `: ${reason.toString()}` : ''})`, { retryable: true }));
    });
    ws.on('error', (error) => {
      this.#log.debug('TTS socket error', { error: error.message });
      lost(
        connected
          ? new S2sError('TTS_CONNECTION_LOST', `TTS server closed the stream before it finished (${error.message})`, { retryable: true })
          : new S2sError('TTS_CONNECTION_FAILED', `TTS connection failed: ${error.message}`, { retryable: true }),
      );
    });
  }

  #audio(bytes: Buffer): void {
    // Copied: a Buffer's offset in its pool need not be 2-byte aligned.
    const pcm = new Int16Array(bytes.byteLength >> 1);
    new Uint8Array(pcm.buffer).set(bytes.subarray(0, pcm.byteLength));
    if (pcm.length === 0) return;
    const now = performance.now();
    if (this.stats.ttfbMs === null) {
      this.stats.ttfbMs = now - (this.stats.firstTextAt ?? now);
      if (this.stats.queued && this.#openedAt !== null) this.stats.queueWaitMs = now - this.#openedAt;
    }
    this.stats.samples += pcm.length;
    this.#audioOut.push(pcm);
  }

  #event(text: string): void {
    let message: { type?: unknown; queued?: unknown; code?: unknown; message?: unknown };
    try {
      message = JSON.parse(text) as typeof message;
    } catch {
      this.#fail(new S2sError('TTS_PROTOCOL', `TTS server sent a message that is not JSON: ${text.slice(0, 100)}`));
      return;
    }
    switch (message.type) {
      case 'opened':
        this.#openedAt = performance.now();
        this.stats.queued = message.queued === true;
        return;
      case 'done':
        this.#finish();
        this.#audioOut.end();
        this.#close(null);
        return;
      case 'error':
        this.#fail(new TtsStreamError(String(message.code ?? 'unknown'), String(message.message ?? '')));
        return;
      default:
        // Messages of a newer server are not ours to fail on.
        this.#log.debug('TTS server message ignored', { type: String(message.type) });
    }
  }

  /** Aborted or abandoned by the reader: tell the server to stop, and end the audio without an error; audio not read yet is dropped. */
  #cancel(): void {
    if (this.#finished) {
      if (this.#signal.aborted) this.#audioOut.discard();
      return;
    }
    this.#finish();
    this.#close('cancel');
    this.#audioOut.discard();
  }

  #fail(error: unknown): void {
    if (this.#finished) return;
    this.#finish();
    this.#close(null);
    this.#audioOut.fail(error);
  }

  /** The abort listener stays: audio already here but not read is dropped when the signal fires later. */
  #finish(): void {
    this.#finished = true;
    if (this.#stallTimer) clearTimeout(this.#stallTimer);
    this.#stallTimer = null;
    this.#unsubscribeCrash?.();
    this.#unsubscribeCrash = null;
  }

  /** Closes the socket, sending `cancel` first when the stream is still live on the server. */
  #close(send: 'cancel' | null): void {
    const ws = this.#ws;
    if (!ws) return;
    if (ws.readyState === WebSocket.OPEN) {
      if (send) ws.send(JSON.stringify({ type: send }));
      ws.close(1000);
    } else if (ws.readyState === WebSocket.CONNECTING) {
      // Nothing was sent yet: the server closes a stream whose socket goes away.
      ws.terminate();
    }
  }
}
