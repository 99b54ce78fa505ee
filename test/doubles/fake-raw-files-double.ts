/**
 * A fake of GitHub's raw file server on loopback for the builder's tests: `GET /<name>` serves a file, with
 * Range requests (206) as the real one answers them. Faults on demand: cut a transfer after N bytes, serve
 * corrupted bytes.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export class FakeRawFilesDouble {
  readonly files = new Map<string, Buffer>();
  readonly requests: { path: string; range: string | null }[] = [];
  readonly interruptNext = new Map<string, number>();
  readonly corrupt = new Set<string>();

  private constructor(private readonly server: Server) {}

  static async start(): Promise<FakeRawFilesDouble> {
    const server = createServer();
    const fake = new FakeRawFilesDouble(server);
    server.on('request', (req, res) => {
      const path = decodeURIComponent((req.url ?? '/').split('?')[0]!.slice(1));
      const range = req.headers.range ?? null;
      fake.requests.push({ path, range });
      let body = fake.files.get(path);
      if (!body) return void res.writeHead(404).end('404: Not Found');
      if (fake.corrupt.has(path)) body = Buffer.from(body.map((b) => b ^ 0xff));
      const from = range ? Number(/^bytes=(\d+)-$/.exec(range)?.[1] ?? 0) : 0;
      if (from >= body.length && range) return void res.writeHead(416).end();
      const slice = body.subarray(from);
      res.writeHead(range ? 206 : 200, { 'content-length': String(slice.length), ...(range ? { 'content-range': `bytes ${from}-${body.length - 1}/${body.length}` } : {}) });
      const cut = fake.interruptNext.get(path);
      if (cut !== undefined) {
        fake.interruptNext.delete(path);
        // The bytes before the cut reach the client first, then the connection drops.
        res.write(slice.subarray(0, cut), () => setTimeout(() => res.destroy(), 50));
        return;
      }
      res.end(slice);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return fake;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
