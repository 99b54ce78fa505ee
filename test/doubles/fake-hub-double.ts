/**
 * A fake Hugging Face Hub on loopback for the model builder's tests: the listing APIs
 * (`/api/models/<repo>/tree/<rev>`, `/api/models/<repo>/paths-info/<rev>`) and ranged file reads
 * (`/<repo>/resolve/<rev>/<path>`) and the revision info (`/api/models/<repo>/revision/<rev>`) that
 * @huggingface/hub uses, serving small files. As on the real hub, a repo's head commit differs from
 * the last commit that touched each file (which is what the listings report per file). A revision is
 * `main` or the head commit; anything else is a 404. Faults on demand: cut a transfer after N bytes,
 * serve corrupted bytes, 404, and repos that need a token.
 */
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeFile {
  content: Buffer;
  /** Stored with LFS (sha256 listed) rather than in git (git blob sha1 listed). */
  lfs?: boolean;
}

export interface FakeHubRequest {
  method: string;
  path: string;
  range: string | null;
  authorization: string | null;
}

const sha1 = (text: string) => createHash('sha1').update(text).digest('hex');

export class FakeHubDouble {
  readonly requests: FakeHubRequest[] = [];
  /** repo -> path -> file */
  readonly repos = new Map<string, Map<string, FakeFile>>();
  /** Cut the next transfer of this path (repo/path) after so many bytes. */
  readonly interruptNext = new Map<string, number>();
  /** Serve these files (repo/path) with flipped bytes. */
  readonly corrupt = new Set<string>();
  /** Repos that answer 401 without this token. */
  readonly gated = new Map<string, string>();
  /** Repos whose head is a given commit (a source pinned to a real commit). */
  readonly heads = new Map<string, string>();
  readonly #server: Server;

  private constructor() {
    this.#server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://hub');
      const path = decodeURIComponent(url.pathname);
      this.requests.push({ method: req.method ?? 'GET', path, range: req.headers.range ?? null, authorization: req.headers.authorization ?? null });
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => this.#handle(req.method ?? 'GET', path, req.headers, Buffer.concat(chunks).toString(), res));
    });
  }

  static async start(): Promise<FakeHubDouble> {
    const hub = new FakeHubDouble();
    await new Promise<void>((resolve) => hub.#server.listen(0, '127.0.0.1', resolve));
    return hub;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  addFile(repo: string, path: string, file: FakeFile): void {
    if (!this.repos.has(repo)) this.repos.set(repo, new Map());
    this.repos.get(repo)!.set(path, file);
  }

  /** The commit `main` points to: newer than every file's last commit. */
  headCommit(repo: string): string {
    return this.heads.get(repo) ?? sha1(`head of ${repo}`);
  }

  /** The last commit that touched a file: a different one for every file. */
  lastCommit(repo: string, path: string): string {
    return sha1(`last change of ${repo}/${path}`);
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #info(repo: string, path: string, file: FakeFile) {
    const gitSha1 = createHash('sha1').update(`blob ${file.content.length}\0`).update(file.content).digest('hex');
    const sha256 = createHash('sha256').update(file.content).digest('hex');
    return {
      type: 'file',
      path,
      size: file.lfs ? 134 : file.content.length,
      oid: gitSha1,
      ...(file.lfs ? { lfs: { oid: sha256, size: file.content.length, pointerSize: 134 } } : {}),
      lastCommit: { id: this.lastCommit(repo, path), title: `update ${path}`, date: '2026-01-01T00:00:00.000Z' },
    };
  }

  #handle(method: string, path: string, headers: NodeJS.Dict<string | string[]>, body: string, res: import('node:http').ServerResponse): void {
    const json = (status: number, value: unknown, extra: Record<string, string> = {}): void => {
      res.writeHead(status, { 'content-type': 'application/json', ...extra }).end(JSON.stringify(value));
    };
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/(tree|paths-info|revision)\/([^/]+)/.exec(path);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    const repoName = api?.[1] ?? resolve?.[1];
    const repo = repoName ? this.repos.get(repoName) : undefined;
    if (!repoName || !repo) return json(404, { error: 'Repository not found' }, { 'x-error-code': 'RepoNotFound' });
    const token = this.gated.get(repoName);
    if (token && headers.authorization !== `Bearer ${token}`) return json(401, { error: 'Access to this repository is restricted' });

    const revision = api?.[3] ?? resolve?.[2];
    const head = this.headCommit(repoName);
    if (revision !== 'main' && revision !== head) return json(404, { error: `Invalid rev id: ${revision}` }, { 'x-error-code': 'RevisionNotFound' });

    if (api?.[2] === 'revision' && method === 'GET') return json(200, { _id: sha1(repoName).slice(0, 24), id: repoName, sha: head, private: false, downloads: 0, likes: 0 });
    if (api?.[2] === 'tree' && method === 'GET') return json(200, [...repo].map(([p, f]) => this.#info(repoName, p, f)));
    if (api?.[2] === 'paths-info' && method === 'POST') {
      const { paths } = JSON.parse(body || '{}') as { paths?: string[] };
      return json(200, (paths ?? []).flatMap((p) => (repo.has(p) ? [this.#info(repoName, p, repo.get(p)!)] : [])));
    }
    if (resolve && (method === 'GET' || method === 'HEAD')) {
      const filePath = resolve[3]!;
      const file = repo.get(filePath);
      if (!file) return json(404, { error: 'Entry not found' }, { 'x-error-code': 'EntryNotFound' });
      const key = `${repoName}/${filePath}`;
      let content = file.content;
      if (this.corrupt.has(key)) content = Buffer.from(content.map((b) => b ^ 0xff));
      const info = this.#info(repoName, filePath, file);
      const etag = `"${info.lfs?.oid ?? info.oid}"`;
      const common = { etag, 'x-repo-commit': head, 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' };
      const range = /^bytes=(\d+)-(\d*)$/.exec(String(headers.range ?? ''));
      let start = 0;
      let end = content.length - 1;
      if (range) {
        start = Number(range[1]);
        end = range[2] ? Math.min(Number(range[2]), content.length - 1) : content.length - 1;
      }
      const slice = content.subarray(start, end + 1);
      res.writeHead(range ? 206 : 200, {
        ...common,
        'content-length': String(slice.length),
        ...(range ? { 'content-range': `bytes ${start}-${end}/${content.length}` } : {}),
      });
      if (method === 'HEAD') {
        res.end();
        return;
      }
      const cut = this.interruptNext.get(key);
      if (cut !== undefined && slice.length > 1) {
        this.interruptNext.delete(key);
        res.write(slice.subarray(0, cut));
        setTimeout(() => res.socket?.destroy(), 20);
        return;
      }
      res.end(slice);
      return;
    }
    return json(404, { error: `no route for ${method} ${path}` });
  }
}
