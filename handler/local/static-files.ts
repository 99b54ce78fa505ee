/**
 * Serves the browser client (dist/web, copied there by the build) over plain HTTP: on its own port
 * for local development (3000), and at `/` of a load-balancing endpoint.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css' };

/** dist/web beside the bundle (dist/handler.mjs). */
export const WEB_DIR = fileURLToPath(new URL('./web/', import.meta.url));

/** Answers a GET for a file of `dir`; returns false when the path is not one (so others may answer). */
export async function serveStatic(req: IncomingMessage, res: ServerResponse, dir: string): Promise<boolean> {
  if (req.method !== 'GET') return false;
  const path = new URL(req.url ?? '/', 'http://web').pathname;
  const name = normalize(path === '/' ? 'index.html' : path.slice(1));
  if (name.startsWith('..') || !TYPES[extname(name)]) return false;
  try {
    const body = await readFile(join(dir, name));
    res.writeHead(200, { 'content-type': TYPES[extname(name)]!, 'cache-control': 'no-cache' }).end(body);
    return true;
  } catch {
    return false;
  }
}

export async function startWebServer(port: number, host: string, dir = WEB_DIR): Promise<Server> {
  const server = createServer((req, res) => {
    void serveStatic(req, res, dir).then((served) => {
      if (!served) res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  return server;
}
