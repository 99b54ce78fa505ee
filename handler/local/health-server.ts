/**
 * The HTTP server of a RunPod load-balancing endpoint (PROTOCOLS.md section 3): `GET /ping` answers
 * 204 while the models load, 200 once the worker is ready, 503 if start-up failed. It starts before
 * the engines so the platform sees the worker as initializing rather than dead.
 *
 * A worker carrying S2S_MAX_CONVERSATIONS live sessions answers 429 with `{"status":"full",...}`:
 * RunPod's load balancer reads 200 as healthy, 204 as initializing and anything else as unhealthy,
 * and routes requests only to healthy workers, so a full worker is sent no new sessions until a
 * slot frees and /ping answers 200 again. The bodies carry the conversations in progress.
 */
import type { ConversationLoad } from '../conversation-slots.js';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WEB_DIR, serveStatic } from './static-files.js';

export type HealthState = 'loading' | 'ready' | 'failed';

export class HealthServer {
  state: HealthState = 'loading';
  /** Conversations in progress against the limit, once the handler is there. */
  load: (() => ConversationLoad) | null = null;
  readonly #server: Server;

  private constructor() {
    this.#server = createServer((req, res) => {
      if (req.method === 'GET' && req.url?.split('?')[0] === '/ping') {
        const load = this.state === 'ready' ? this.load?.() : undefined;
        const full = load !== undefined && load.inProgress >= load.max;
        const status = full ? 429 : this.state === 'ready' ? 200 : this.state === 'loading' ? 204 : 503;
        const body = { status: full ? 'full' : this.state, ...(load && { conversations: load.inProgress, max: load.max }) };
        res.writeHead(status, { 'content-type': 'application/json' }).end(status === 204 ? undefined : JSON.stringify(body));
        return;
      }
      // The browser client, so the endpoint's own URL opens a page to talk to it.
      void serveStatic(req, res, WEB_DIR).then((served) => {
        if (!served) res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: `no such path: ${req.url}` }));
      });
    });
  }

  static async start(port: number, host = '0.0.0.0'): Promise<HealthServer> {
    const server = new HealthServer();
    await new Promise<void>((resolve, reject) => {
      server.#server.once('error', reject);
      server.#server.listen(port, host, resolve);
    });
    return server;
  }

  /** The HTTP server, so live sessions can be served on its `/ws`. */
  get httpServer(): Server {
    return this.#server;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
