/** A live-session client for tests: sends 16 kHz PCM16 frames, records events and audio in arrival order. */
import WebSocket from 'ws';
import { float32ToPcm16 } from '../../src/audio/pcm.js';

export type Received = { kind: 'event'; event: { type: string; [k: string]: unknown }; at: number } | { kind: 'audio'; pcm: Int16Array; at: number };

export class SessionClient {
  readonly received: Received[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  #waiters: (() => void)[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      const at = performance.now();
      if (isBinary) {
        const bytes = data as Buffer;
        const pcm = new Int16Array(bytes.byteLength / 2);
        new Uint8Array(pcm.buffer).set(bytes);
        this.received.push({ kind: 'audio', pcm, at });
      } else {
        this.received.push({ kind: 'event', event: JSON.parse(data.toString()) as { type: string }, at });
      }
      for (const wake of this.#waiters.splice(0)) wake();
    });
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  static connect(url: string): Promise<SessionClient> {
    const ws = new WebSocket(url);
    const client = new SessionClient(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`refused with HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  send(message: unknown): void {
    this.ws.send(JSON.stringify(message));
  }

  /** Sends audio in frames of `frameMs`; with `realtime`, paced like a microphone. */
  async sendAudio(samples: Float32Array, options: { frameMs?: number; realtime?: boolean } = {}): Promise<void> {
    const frame = Math.round(((options.frameMs ?? 100) / 1000) * 16_000);
    for (let at = 0; at < samples.length; at += frame) {
      const pcm = float32ToPcm16(samples.subarray(at, at + frame));
      this.ws.send(new Uint8Array(pcm.buffer));
      if (options.realtime) await new Promise((resolve) => setTimeout(resolve, options.frameMs ?? 100));
    }
  }

  events(type?: string): { type: string; [k: string]: unknown }[] {
    return this.received.flatMap((r) => (r.kind === 'event' && (!type || r.event.type === type) ? [r.event] : []));
  }

  audioSamples(): number {
    return this.received.reduce((n, r) => n + (r.kind === 'audio' ? r.pcm.length : 0), 0);
  }

  /** Waits until an event matching `match` has arrived. */
  async waitFor(match: (event: { type: string; [k: string]: unknown }) => boolean, timeoutMs = 20_000): Promise<{ type: string; [k: string]: unknown }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events().find(match);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`timed out waiting; events so far: ${this.events().map((e) => e.type).join(', ')}`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  async waitForAudio(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.received.some((r) => r.kind === 'audio')) {
      if (Date.now() > deadline) throw new Error('timed out waiting for audio');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

/** Opens a session on `url` (token included), pings it and leaves: the worker is alive and serving. */
export async function expectSessionServed(url: string): Promise<void> {
  const client = await SessionClient.connect(url);
  await client.waitFor((e) => e.type === 'ready');
  client.send({ type: 'ping' });
  await client.waitFor((e) => e.type === 'pong');
  client.ws.close();
  await client.closed;
}
