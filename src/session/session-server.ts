/**
 * Accepts live-session WebSockets on `/ws`, on its own port (session jobs: the exposed TCP port) or on
 * an HTTP server that already exists (the load-balancing server, the local API). A client proves who
 * it is with a token in the URL (`/ws?token=...`) or, since browsers cannot set headers on a
 * WebSocket, in a first message `{"type":"auth","token":"..."}`. Dead connections are dropped by a
 * ping/pong heartbeat.
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { errorMessage, type Logger } from '../log/logger.js';
import { MAX_AUDIO_FRAME_BYTES } from './protocol.js';

const AUTH_TIMEOUT_MS = 5_000;
const HEARTBEAT_MS = 15_000;
/** WebSocket close codes in the application range. */
export const CLOSE_UNAUTHORIZED = 4401;

type OnConnect = (ws: WebSocket) => void;

export class SessionServer {
  readonly #log: Logger;
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: MAX_AUDIO_FRAME_BYTES * 2, perMessageDeflate: false });
  /** One-use tokens of session jobs. */
  readonly #tokens = new Map<string, { onConnect: OnConnect; timer: NodeJS.Timeout }>();
  /** A standing token (load-balancing endpoints): every connection with it opens a new session. */
  #standing: { token: string; onConnect: OnConnect } | null = null;
  #ownServer: Server | null = null;
  readonly #heartbeat: NodeJS.Timeout;
  readonly #alive = new WeakSet<WebSocket>();

  private constructor(log: Logger) {
    this.#log = log;
    this.#heartbeat = setInterval(() => {
      for (const ws of this.#wss.clients) {
        if (!this.#alive.has(ws)) {
          ws.terminate();
          continue;
        }
        this.#alive.delete(ws);
        ws.ping();
      }
    }, HEARTBEAT_MS);
    this.#heartbeat.unref();
  }

  /** Serves `/ws` on an HTTP server that already exists. */
  static attach(server: Server, log: Logger): SessionServer {
    const sessions = new SessionServer(log);
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => sessions.#upgrade(req, socket, head));
    return sessions;
  }

  /** Serves `/ws` on a port of its own. */
  static async listen(port: number, host: string, log: Logger): Promise<SessionServer> {
    const server = createServer((_req, res) => res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"live sessions are on /ws"}'));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, resolve);
    });
    const sessions = SessionServer.attach(server, log);
    sessions.#ownServer = server;
    return sessions;
  }

  get port(): number | null {
    return this.#ownServer ? (this.#ownServer.address() as AddressInfo).port : null;
  }

  /** A one-use token; it expires after `ttlMs` if nobody connects. Returns a function that withdraws it. */
  register(token: string, onConnect: OnConnect, ttlMs: number): () => void {
    const timer = setTimeout(() => this.#tokens.delete(token), ttlMs);
    this.#tokens.set(token, { onConnect, timer });
    return () => {
      clearTimeout(timer);
      this.#tokens.delete(token);
    };
  }

  setStandingToken(token: string, onConnect: OnConnect): void {
    this.#standing = { token, onConnect };
  }

  async close(): Promise<void> {
    clearInterval(this.#heartbeat);
    for (const { timer } of this.#tokens.values()) clearTimeout(timer);
    for (const ws of this.#wss.clients) ws.terminate();
    if (this.#ownServer) {
      this.#ownServer.closeAllConnections();
      await new Promise<void>((resolve) => this.#ownServer!.close(() => resolve()));
    }
  }

  /** Takes the connection for a token, or null when the token is unknown. */
  #claim(token: string): OnConnect | null {
    const once = this.#tokens.get(token);
    if (once) {
      clearTimeout(once.timer);
      this.#tokens.delete(token);
      return once.onConnect;
    }
    if (!this.#standing) return null;
    const given = Buffer.from(token);
    const expected = Buffer.from(this.#standing.token);
    return given.length === expected.length && timingSafeEqual(given, expected) ? this.#standing.onConnect : null;
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://session');
    if (url.pathname !== '/ws') return; // another upgrade handler may own this path
    const token = url.searchParams.get('token');
    const onConnect = token ? this.#claim(token) : null;
    if (token && !onConnect) {
      socket.end('HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\n\r\n{"error":"unknown or expired session token"}');
      return;
    }
    // A protocol violation (oversized frame, invalid UTF-8, bad opcode) makes `ws` emit 'error' on
    // the socket or the connection; with no listener Node would throw and take the whole worker down.
    socket.on('error', (error) => this.#log.warn('session connection error', { error: error.message }));
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', (error) => this.#log.warn('session socket error', { error: error.message }));
      this.#alive.add(ws);
      ws.on('pong', () => this.#alive.add(ws));
      if (onConnect) {
        this.#open(ws, onConnect);
        return;
      }
      // No token in the URL: the first message must carry it.
      const timer = setTimeout(() => ws.close(CLOSE_UNAUTHORIZED, 'no auth message'), AUTH_TIMEOUT_MS);
      ws.once('message', (data, isBinary) => {
        clearTimeout(timer);
        let claimed: OnConnect | null = null;
        if (!isBinary) {
          try {
            const message = JSON.parse(data.toString()) as { type?: unknown; token?: unknown };
            if (message.type === 'auth' && typeof message.token === 'string') claimed = this.#claim(message.token);
          } catch {
            // not JSON: refused below
          }
        }
        if (!claimed) {
          this.#log.warn('session refused: bad or missing token');
          ws.close(CLOSE_UNAUTHORIZED, 'unauthorized');
          return;
        }
        this.#open(ws, claimed);
      });
    });
  }

  /** Hands an authenticated socket to its session; a session that fails to open closes the socket, not the worker. */
  #open(ws: WebSocket, onConnect: OnConnect): void {
    try {
      onConnect(ws);
    } catch (error) {
      const message = errorMessage(error);
      this.#log.error('session failed to open', { error: message });
      if (ws.readyState === ws.OPEN) {
        ws.send(JSON.stringify({ type: 'error', code: 'SESSION_FAILED', message }));
        ws.close(1011, 'session failed to open');
      }
    }
  }
}
