/** A bare Realtime API client for tests: JSON events over `ws`, recorded in arrival order. */
import WebSocket from 'ws';

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
