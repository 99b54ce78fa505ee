/**
 * Client of VibeVoice's realtime WebSocket protocol (PROTOCOLS.md section 4): one utterance per
 * connection, everything in the query string, binary PCM16 24 kHz frames back, JSON log events
 * beside them. Closing the socket stops generation. A busy server (event `backend_busy`, close
 * 1013) is waited for, not failed; `generation_error`/`backend_error` become errors.
 */
import WebSocket from 'ws';
import { InvalidInputError, S2sError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { AsyncQueue } from '../util/async-queue.js';
import type { TtsSidecar } from './sidecar.js';
import { toSpeakable } from './speakable.js';
import type { Synthesis, SynthesisOptions, SynthesisStats, Tts } from './tts.js';

export interface VibeVoiceClientOptions {
  defaultVoice?: string;
  cfg: number;
  steps: number;
  /** Longer text is split at sentence (then word) boundaries into several requests. */
  maxRequestChars: number;
  /** How long to keep retrying a busy server before failing. */
  busyTimeoutMs: number;
  busyRetryMs: number;
}

export const DEFAULT_CLIENT_OPTIONS: VibeVoiceClientOptions = { cfg: 1.5, steps: 5, maxRequestChars: 400, busyTimeoutMs: 30_000, busyRetryMs: 25 };

type RequestOutcome = 'done' | 'busy';

const ABNORMAL_CLOSE_GRACE_MS = 250;

export class VibeVoiceClient implements Tts {
  readonly #sidecar: TtsSidecar;
  readonly #options: VibeVoiceClientOptions;
  readonly #log: Logger;

  constructor(sidecar: TtsSidecar, options: Partial<VibeVoiceClientOptions>, log: Logger) {
    this.#sidecar = sidecar;
    this.#options = { ...DEFAULT_CLIENT_OPTIONS, ...options };
    this.#log = log;
  }

  get voices(): readonly string[] {
    return this.#sidecar.voices.voices;
  }

  get defaultVoice(): string {
    return this.#options.defaultVoice ?? this.#sidecar.voices.defaultVoice;
  }

  synthesize(text: string, options: SynthesisOptions): Synthesis {
    const speakable = toSpeakable(text);
    if (!speakable) throw new InvalidInputError('TTS text is empty (nothing speakable after normalisation)');
    const voice = options.voice ?? this.defaultVoice;
    // The server silently falls back to its default voice for unknown names: refuse them here instead.
    if (!this.voices.includes(voice)) {
      throw new InvalidInputError(`unknown voice "${voice}"; valid voices: ${this.voices.join(', ')}`);
    }
    const stats: SynthesisStats = { ttfbMs: null, samples: 0, requests: 0 };
    const parts = splitForRequests(speakable, this.#options.maxRequestChars);
    const stop = new AbortController();
    const queue = new AsyncQueue<Int16Array>(() => stop.abort());
    const signal = AbortSignal.any([options.signal, stop.signal]);
    const started = performance.now();
    const run = async () => {
      for (const part of parts) {
        const deadline = Date.now() + this.#options.busyTimeoutMs;
        for (;;) {
          if (signal.aborted) return;
          await this.#sidecar.ready();
          // The signal may have fired while the server was (re)starting: a listener added now would never run.
          if (signal.aborted) return;
          stats.requests++;
          const outcome = await this.#request(part, voice, options, signal, (pcm) => {
            stats.ttfbMs ??= performance.now() - started;
            stats.samples += pcm.length;
            queue.push(pcm);
          });
          if (outcome === 'done') break;
          if (Date.now() > deadline) throw new S2sError('TTS_BUSY', `TTS server stayed busy for ${this.#options.busyTimeoutMs} ms`, { retryable: true });
          await new Promise((resolve) => setTimeout(resolve, this.#options.busyRetryMs));
        }
      }
    };
    run().then(
      () => queue.end(),
      (error: unknown) => queue.fail(error),
    );
    return Object.assign(queue, { stats });
  }

  /** One connection, one utterance. Resolves 'busy' when the server turned the request away. */
  #request(text: string, voice: string, options: SynthesisOptions, signal: AbortSignal, onAudio: (pcm: Int16Array) => void): Promise<RequestOutcome> {
    const query = new URLSearchParams({ text, cfg: String(options.cfg ?? this.#options.cfg), steps: String(options.steps ?? this.#options.steps), voice });
    const url = `ws://${this.#sidecar.config.host}:${this.#sidecar.config.port}/stream?${query}`;
    return new Promise<RequestOutcome>((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false });
      let serverError: string | null = null;
      let busy = false;
      let settled = false;
      const finish = (outcome: RequestOutcome | Error) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        unsubscribe();
        if (outcome instanceof Error) reject(outcome);
        else resolve(outcome);
      };
      const onAbort = () => {
        // Closing stops generation on the server at its next text window.
        ws.terminate();
        finish('done');
      };
      signal.addEventListener('abort', onAbort, { once: true });
      const unsubscribe = this.#sidecar.onCrash((error) => {
        ws.terminate();
        finish(new S2sError('TTS_CRASHED', `TTS server died mid-utterance: ${error.message}`, { retryable: true }));
      });
      ws.on('message', (data, isBinary) => {
        if (settled) return;
        if (isBinary) {
          const bytes = data as Buffer;
          const pcm = new Int16Array(bytes.byteLength >> 1);
          new Uint8Array(pcm.buffer).set(bytes.subarray(0, pcm.byteLength));
          onAudio(pcm);
          return;
        }
        const event = parseLogEvent(data.toString());
        if (!event) return;
        if (event.event === 'backend_busy') busy = true;
        if (event.event === 'generation_error' || event.event === 'backend_error') {
          serverError ??= typeof event.data?.['message'] === 'string' ? event.data['message'] : event.event;
        }
      });
      ws.on('close', (code) => {
        if (busy || code === 1013) return finish('busy');
        if (serverError) return finish(new S2sError('TTS_FAILED', `TTS generation failed: ${serverError}`));
        if (code !== 1000 && code !== 1005) {
          // The socket usually drops just before the process exit is seen: give a crash the chance to explain it.
          const error = new S2sError('TTS_FAILED', `TTS connection closed abnormally (code ${code})`, { retryable: true });
          setTimeout(() => finish(error), ABNORMAL_CLOSE_GRACE_MS);
          return;
        }
        finish('done');
      });
      ws.on('error', (error) => {
        this.#log.debug('TTS socket error', { error: error.message });
        finish(new S2sError('TTS_FAILED', `TTS connection failed: ${error.message}`, { retryable: true }));
      });
    });
  }

  async dispose(): Promise<void> {
    await this.#sidecar.stop();
  }
}

function parseLogEvent(text: string): { event: string; data?: Record<string, unknown> } | null {
  try {
    const parsed = JSON.parse(text) as { type?: unknown; event?: unknown; data?: unknown };
    if (parsed.type !== 'log' || typeof parsed.event !== 'string') return null;
    return { event: parsed.event, data: (parsed.data ?? undefined) as Record<string, unknown> | undefined };
  } catch {
    return null;
  }
}

/** Splits long text at sentence ends, then at spaces, into parts of at most `max` characters. */
export function splitForRequests(text: string, max: number): string[] {
  if (text.length <= max) return [text];
  const sentences = text.match(/[^.!?]+(?:[.!?]+|$)\s*/g) ?? [text];
  const parts: string[] = [];
  let current = '';
  const pushWords = (sentence: string) => {
    for (const word of sentence.split(/\s+/).filter(Boolean)) {
      if (current && current.length + word.length + 1 > max) {
        parts.push(current.trim());
        current = '';
      }
      current += (current ? ' ' : '') + word;
    }
  };
  for (const sentence of sentences) {
    if (current.length + sentence.length <= max) current += sentence;
    else {
      if (current.trim()) parts.push(current.trim());
      current = '';
      if (sentence.length <= max) current = sentence;
      else pushWords(sentence);
    }
  }
  if (current.trim()) parts.push(current.trim());
  return parts;
}
