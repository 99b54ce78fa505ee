/**
 * Downloads a file from a plain HTTPS URL (GitHub's raw files) the way hub-download.ts fetches from the hub:
 * resumed from its `.part` file with a Range request, verified against a pinned git blob sha1 before it is
 * renamed into place, and recorded in the manifest.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DownloadError, placeVerified, type Manifest } from './hub-download.js';

export interface UrlFile {
  url: string;
  /** Where it comes from, for the manifest and messages (e.g. `microsoft/VibeVoice`). */
  repo: string;
  revision: string;
  path: string;
  /** The git blob sha1 the pinned commit's tree records. */
  gitSha1: string;
}

export interface UrlOptions {
  onProgress?: (file: string, bytesDone: number, bytesTotal: number) => void;
  attempts?: number;
}

export async function fetchUrlFile(file: UrlFile, dest: string, manifest: Manifest, manifestKey: string, options: UrlOptions = {}): Promise<'present' | 'downloaded'> {
  const known = manifest.files[manifestKey];
  const existing = await stat(dest).then((s) => s.size, () => null);
  if (known && existing !== null && existing === known.size && known.git_sha1 === file.gitSha1) return 'present';

  await mkdir(dirname(dest), { recursive: true });
  const part = `${dest}.part`;
  const attempts = options.attempts ?? 4;
  for (let attempt = 1; ; attempt++) {
    try {
      await transfer(file, part, options);
      break;
    } catch (error) {
      if (error instanceof DownloadError) throw error;
      if (attempt >= attempts) throw new DownloadError(`${file.url}: transfer failed after ${attempt} attempts: ${(error as Error).message}`);
    }
  }
  const size = (await stat(part)).size;
  await placeVerified(part, dest, { ...file, size, sha256: null }, manifest, manifestKey);
  return 'downloaded';
}

/** Fills `part` to the end of the remote file, from where it stopped. */
async function transfer(file: UrlFile, part: string, options: UrlOptions): Promise<void> {
  const have = await stat(part).then((s) => s.size, () => 0);
  const response = await fetch(file.url, { headers: have > 0 ? { Range: `bytes=${have}-` } : {} });
  // Asked past the end: the part file is complete (verification decides whether it is right).
  if (response.status === 416 && have > 0) return;
  if (response.status === 404) throw new DownloadError(`${file.url} was not found (404)`);
  if (response.status !== 200 && response.status !== 206) throw new Error(`HTTP ${response.status}`);
  // A server that ignores Range sends the whole file: start over.
  const offset = response.status === 206 ? have : 0;
  const length = Number(response.headers.get('content-length') ?? 0);
  const total = length > 0 ? offset + length : 0;
  let done = offset;
  const count = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      done += chunk.length;
      options.onProgress?.(file.path, done, total);
      callback(null, chunk);
    },
  });
  if (!response.body) throw new Error('no response body');
  await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream), count, createWriteStream(part, { flags: offset > 0 ? 'a' : 'w' }));
  if (total > 0 && done !== total) throw new Error(`got ${done} of ${total} bytes`);
}
