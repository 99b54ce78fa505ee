/** A bare Realtime API client for tests: JSON events over `ws`, recorded in arrival order. */
import type { RealtimeItem, RealtimeSession } from '@openai/agents-realtime';
import WebSocket from 'ws';
import type { Utterance } from '../fixtures/speech.js';

export type RealtimeEvent = { type: string; [k: string]: unknown };

export class RealtimeTestClient {
  readonly events: RealtimeEvent[] = [];
  readonly closed: Promise<{ code: number }>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => this.events.push(JSON.parse(data.toString()) as RealtimeEvent));
    this.closed = new Promise((resolve) => ws.once('close', (code) => resolve({ code })));
  }

  /** Opens `url` with a bearer token (or the given headers/subprotocols); rejects with the HTTP status when refused. */
  static connect(url: string, options: { token?: string; protocols?: string[]; headers?: Record<string, string> } = {}): Promise<RealtimeTestClient> {
    const headers = { ...(options.token ? { Authorization: `Bearer ${options.token}` } : {}), ...options.headers };
    const ws = new WebSocket(url, options.protocols ?? [], { headers });
    const client = new RealtimeTestClient(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`refused with HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  send(event: Record<string, unknown>): void {
    this.ws.send(JSON.stringify(event));
  }

  of(type: string): RealtimeEvent[] {
    return this.events.filter((e) => e.type === type);
  }

  /** Waits for the `count`-th event matching `match` (1 = the first). */
  async waitFor(match: string | ((event: RealtimeEvent) => boolean), timeoutMs = 20_000, count = 1): Promise<RealtimeEvent> {
    const test = typeof match === 'string' ? (e: RealtimeEvent) => e.type === match : match;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.filter(test);
      if (found.length >= count) return found[count - 1]!;
      if (Date.now() > deadline) throw new Error(`timed out waiting; events so far: ${this.events.map((e) => e.type).join(', ')}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/** PCM16 LE bytes of float samples. */
export function pcm16Bytes(samples: Float32Array): Buffer {
  const out = Buffer.alloc(samples.length * 2);
  for (let i = 0; i < samples.length; i++) out.writeInt16LE(Math.max(-32768, Math.min(32767, Math.round(samples[i]! * 32768))), i * 2);
  return out;
}

/** Feeds an agents-realtime session 24 kHz PCM16, in frames of `frameMs`, optionally paced like a microphone. */
export async function speakTo(session: RealtimeSession, utterance: Utterance, options: { frameMs?: number; realtime?: boolean } = {}): Promise<void> {
  const frameMs = options.frameMs ?? 100;
  const bytes = pcm16Bytes(utterance.samples);
  const size = (24_000 * 2 * frameMs) / 1000;
  for (let at = 0; at < bytes.length; at += size) {
    const frame = bytes.subarray(at, at + size);
    session.sendAudio(frame.buffer.slice(frame.byteOffset, frame.byteOffset + frame.byteLength) as ArrayBuffer);
    if (options.realtime) await new Promise((resolve) => setTimeout(resolve, frameMs));
  }
}

export function waitUntil<T>(probe: () => T | undefined | null | false, timeoutMs = 30_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tick = () => {
      const value = probe();
      if (value) return resolve(value);
      if (Date.now() > deadline) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 20);
    };
    tick();
  });
}

export type MessageItem = Extract<RealtimeItem, { type: 'message' }>;
export const messages = (history: RealtimeItem[]) => history.filter((i): i is MessageItem => i.type === 'message');
export const transcriptOf = (item: MessageItem | undefined) =>
  (item?.content ?? []).map((c) => ('transcript' in c ? (c.transcript ?? '') : 'text' in c ? c.text : '')).join('');

