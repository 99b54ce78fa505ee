/**
 * Accepts live-session WebSockets on `/ws` (our protocol) and `/v1/realtime` (the OpenAI Realtime
 * API), on its own port (session jobs: the exposed TCP port) or on an HTTP server that already
 * exists (the load-balancing server, the local API).
 *
 * On `/ws` a client proves who it is with a token in the URL (`/ws?token=...`) or, since browsers
 * cannot set headers on a WebSocket, in a first message `{"type":"auth","token":"..."}`. On
 * `/v1/realtime` the token comes as the clients send their API key: `Authorization: Bearer`, the
 * subprotocol `openai-insecure-api-key.<token>` (browsers), or `?token=`; a wrong or missing one is
 * refused with HTTP 401 before the upgrade. Dead connections are dropped by a ping/pong heartbeat.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { errorMessage, type Logger } from '../log/logger.js';
import { secretDigest, secretsEqual } from '../util/secrets.js';
import { MAX_AUDIO_FRAME_BYTES } from './protocol.js';
import { REALTIME_MAX_PAYLOAD_BYTES } from './realtime/realtime-session.js';

export const REALTIME_PATH = '/v1/realtime';
const API_KEY_SUBPROTOCOL = 'openai-insecure-api-key.';

const AUTH_TIMEOUT_MS = 5_000;
const HEARTBEAT_MS = 15_000;
/** WebSocket close codes in the application range. */
export const CLOSE_UNAUTHORIZED = 4401;

/** Which wire protocol a connection speaks, and the URL it asked for (query parameters such as `model`). */
export interface Connection {
  protocol: 'native' | 'realtime';
  url: URL;
}

type OnConnect = (ws: WebSocket, connection: Connection) => void;

export class SessionServer {
  readonly #log: Logger;
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: MAX_AUDIO_FRAME_BYTES * 2, perMessageDeflate: false });
  /** Realtime events carry base64 audio and are larger; `realtime` is selected only when offered (a `ws` client aborts otherwise). */
  readonly #realtimeWss = new WebSocketServer({
    noServer: true,
    maxPayload: REALTIME_MAX_PAYLOAD_BYTES,
    perMessageDeflate: false,
    handleProtocols: (offered) => (offered.has('realtime') ? 'realtime' : ([...offered].find((p) => !p.startsWith(API_KEY_SUBPROTOCOL)) ?? false)),
  });
  /** One-use tokens of session jobs, keyed by their digest (never the token itself: see util/secrets.ts). */
  readonly #tokens = new Map<string, { onConnect: OnConnect; timer: NodeJS.Timeout }>();
  /** A standing token (load-balancing endpoints): every connection with it opens a new session. */
  #standing: { token: string; onConnect: OnConnect } | null = null;
  #ownServer: Server | null = null;
  readonly #heartbeat: NodeJS.Timeout;
  readonly #alive = new WeakSet<WebSocket>();

  private constructor(log: Logger) {
    this.#log = log;
    this.#heartbeat = setInterval(() => {
      for (const ws of [...this.#wss.clients, ...this.#realtimeWss.clients]) {
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
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      // Another upgrade handler on the same server may own other paths; with none, nobody would
      // ever answer or close the socket (it would hold its descriptor for good, and keep the
      // server's close() waiting), so it is refused here.
      if (!sessions.#upgrade(req, socket, head) && server.listenerCount('upgrade') === 1) refuse(socket, '404 Not Found', 'no such WebSocket path: live sessions are on /ws and /v1/realtime');
    });
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
    const digest = secretDigest(token);
    const timer = setTimeout(() => this.#tokens.delete(digest), ttlMs);
    this.#tokens.set(digest, { onConnect, timer });
    return () => {
      clearTimeout(timer);
      this.#tokens.delete(digest);
    };
  }

  setStandingToken(token: string, onConnect: OnConnect): void {
    this.#standing = { token, onConnect };
  }

  async close(): Promise<void> {
    clearInterval(this.#heartbeat);
    for (const { timer } of this.#tokens.values()) clearTimeout(timer);
    for (const ws of [...this.#wss.clients, ...this.#realtimeWss.clients]) ws.terminate();
    if (this.#ownServer) {
      this.#ownServer.closeAllConnections();
      await new Promise<void>((resolve) => this.#ownServer!.close(() => resolve()));
    }
  }

  /** Takes the connection for a token, or null when the token is unknown. */
  #claim(token: string): OnConnect | null {
    const digest = secretDigest(token);
    const once = this.#tokens.get(digest);
    if (once) {
      clearTimeout(once.timer);
      this.#tokens.delete(digest);
      return once.onConnect;
    }
    if (!this.#standing) return null;
    return secretsEqual(token, this.#standing.token) ? this.#standing.onConnect : null;
  }

  /** Returns false (and leaves the socket alone) for a path that is not ours. */
  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const url = new URL(req.url ?? '/', 'http://session');
    if (url.pathname !== '/ws' && url.pathname !== REALTIME_PATH) return false;
    // A protocol violation (oversized frame, invalid UTF-8, bad opcode) makes `ws` emit 'error' on
    // the socket or the connection; with no listener Node would throw and take the whole worker down.
    socket.on('error', (error) => this.#log.warn('session connection error', { error: error.message }));
    const realtime = url.pathname === REALTIME_PATH;
    const token = realtime ? realtimeToken(req, url) : url.searchParams.get('token');
    const onConnect = token ? this.#claim(token) : null;
    if ((token || realtime) && !onConnect) {
      const why = token ? 'unknown or expired session token' : 'missing token: send it as Authorization: Bearer <token>, as the subprotocol openai-insecure-api-key.<token>, or as ?token=';
      refuse(socket, '401 Unauthorized', why);
      return true;
    }
    const connection: Connection = { protocol: realtime ? 'realtime' : 'native', url };
    (realtime ? this.#realtimeWss : this.#wss).handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', (error) => this.#log.warn('session socket error', { error: error.message }));
      this.#alive.add(ws);
      ws.on('pong', () => this.#alive.add(ws));
      if (onConnect) {
        this.#open(ws, onConnect, connection);
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
        this.#open(ws, claimed, connection);
      });
    });
    return true;
  }

  /** Hands an authenticated socket to its session; a session that fails to open closes the socket, not the worker. */
  #open(ws: WebSocket, onConnect: OnConnect, connection: Connection): void {
    try {
      onConnect(ws, connection);
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

/**
 * Answers an upgrade with an HTTP error and destroys the socket once the answer is written: a
 * client that keeps its end open must not keep ours (as `ws` itself refuses a handshake).
 */
function refuse(socket: Duplex, status: string, error: string): void {
  socket.on('error', () => undefined);
  socket.once('finish', () => socket.destroy());
  socket.end(`HTTP/1.1 ${status}\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n${JSON.stringify({ error })}`);
}

/** A Realtime client's token: its API key as a bearer token, a browser's key subprotocol, or `?token=`. */
function realtimeToken(req: IncomingMessage, url: URL): string | null {
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
  if (bearer) return bearer;
  const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
  const key = offered.find((p) => p.startsWith(API_KEY_SUBPROTOCOL))?.slice(API_KEY_SUBPROTOCOL.length);
  if (key) return key;
  return url.searchParams.get('token');
}
