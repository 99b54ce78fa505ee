/**
 * A man-in-the-middle double between the worker and the local RunPod API: forwards every request,
 * except those matching a rule, which get a canned answer instead (a 500, malformed JSON, a job
 * without input), or have their answer held back for a while. Lets tests play a flaky or
 * misbehaving platform.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ProxyRule {
  method: string;
  /** Matched against the request path (without query). */
  path: RegExp;
  /** How many matching requests get the canned answer (Infinity: all); later ones are forwarded. */
  times: number;
  status: number;
  body: string;
  /** Hold the request this long before answering (a hanging platform). */
  holdMs?: number;
  /** Cut the connection instead of answering (a network failure). */
  reset?: boolean;
}

/** Forwards matching requests but holds them back until `until` settles: the request (`stage: 'request'`) or the platform's answer. */
export interface HoldRule {
  method: string;
  path: RegExp;
  times: number;
  until: Promise<unknown>;
  stage?: 'request' | 'answer';
}

export class PlatformProxyDouble {
  readonly requests: { method: string; path: string; query: string; body: string; answered: 'canned' | 'forwarded'; answer?: string }[] = [];
  readonly #rules: ProxyRule[] = [];
  readonly #holds: HoldRule[] = [];
  readonly #server: Server;
  readonly #target: string;

  private constructor(target: string) {
    this.#target = target;
    this.#server = createServer((req, res) => void this.#handle(req, res));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const method = req.method ?? 'GET';
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const rule = this.#rules.find((r) => r.times > 0 && r.method === method && r.path.test(url.pathname));
    if (rule) {
      rule.times--;
      this.requests.push({ method, path: url.pathname, query: url.search, body: Buffer.concat(chunks).toString(), answered: 'canned' });
      if (rule.holdMs) await new Promise((resolve) => setTimeout(resolve, rule.holdMs));
      if (rule.reset) res.socket?.destroy();
      else if (!res.destroyed) res.writeHead(rule.status, { 'content-type': 'application/json' }).end(rule.body);
      return;
    }
    const record: PlatformProxyDouble['requests'][number] = { method, path: url.pathname, query: url.search, body: Buffer.concat(chunks).toString(), answered: 'forwarded' };
    this.requests.push(record);
    const hold = this.#holds.find((h) => h.times > 0 && h.method === method && h.path.test(url.pathname));
    if (hold) hold.times--;
    try {
      if (hold?.stage === 'request') await hold.until;
      const headers = Object.fromEntries(
        Object.entries(req.headers).filter(([k]) => !['host', 'content-length', 'connection'].includes(k)),
      ) as Record<string, string>;
      const abort = new AbortController();
      req.once('close', () => res.writableEnded || abort.abort());
      const upstream = await fetch(this.#target + url.pathname + url.search, {
        method,
        headers,
        body: chunks.length ? Buffer.concat(chunks) : undefined,
        signal: abort.signal,
      });
      const text = await upstream.text();
      record.answer = text;
      if (hold && hold.stage !== 'request') await hold.until;
      res.writeHead(upstream.status, { 'content-type': 'application/json' }).end(text);
    } catch {
      if (!res.headersSent) res.writeHead(502).end();
    }
  }

  static async start(target: string): Promise<PlatformProxyDouble> {
    const proxy = new PlatformProxyDouble(target);
    await new Promise<void>((resolve) => proxy.#server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  addRule(rule: ProxyRule): void {
    this.#rules.push(rule);
  }

  holdAnswers(rule: HoldRule): void {
    this.#holds.push(rule);
  }

  /** Rewrites the simulator's worker env so the worker talks to this proxy. */
  rewriteEnv(env: Record<string, string>, simulatorUrl: string): Record<string, string> {
    return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v.replace(simulatorUrl, this.url)]));
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
