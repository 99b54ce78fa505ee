/**
 * Downloads model files from the Hugging Face Hub with @huggingface/hub (listing, auth, resolve
 * URLs and ranged reads), adding what a network-volume builder needs on top: resume from a
 * partial file, checksum verification (sha256 for LFS files, git blob sha1 for small files),
 * atomic placement (a `.part` file is renamed only once verified) and a manifest of what is there.
 */
import { downloadFile, listFiles, modelInfo, pathsInfo } from '@huggingface/hub';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface HubOptions {
  /** Default https://huggingface.co; `HF_ENDPOINT` overrides it (a mirror, or the tests' fake hub). */
  hubUrl?: string;
  /** `HF_TOKEN`, for gated or private repos. */
  accessToken?: string;
  /** Called as bytes arrive. */
  onProgress?: (file: string, bytesDone: number, bytesTotal: number) => void;
  /** Attempts per file; each one resumes where the last stopped. */
  attempts?: number;
}

export interface RemoteFile {
  repo: string;
  /** The commit sha the file is fetched at (see resolveCommit). */
  revision: string;
  path: string;
  size: number;
  /** sha256 of the content (LFS files). */
  sha256: string | null;
  /** git blob sha1 (small files stored in git). */
  gitSha1: string | null;
}

export interface ManifestEntry {
  repo: string;
  revision: string;
  path: string;
  size: number;
  sha256: string | null;
  git_sha1: string | null;
  fetched_at: string;
}

export interface Manifest {
  version: 1;
  files: Record<string, ManifestEntry>;
}

export class DownloadError extends Error {}

const COMMIT_SHA = /^[0-9a-f]{40}$/;

/**
 * The commit a revision (branch, tag or commit) points to now. Every file of a repo is then fetched
 * at that one commit, so a run never mixes files from two commits when the branch moves meanwhile.
 */
export async function resolveCommit(repo: string, revision: string, options: HubOptions): Promise<string> {
  if (COMMIT_SHA.test(revision)) return revision;
  let info;
  try {
    info = await modelInfo({ name: repo, revision, additionalFields: ['sha'], hubUrl: options.hubUrl, accessToken: options.accessToken });
  } catch (error) {
    const status = (error as { statusCode?: number }).statusCode;
    if (status === 401 || status === 403) throw new DownloadError(`${repo}: access denied (${status}); set HF_TOKEN for gated or private repos`);
    throw new DownloadError(`${repo}@${revision}: could not resolve the revision to a commit: ${(error as Error).message}`);
  }
  if (typeof info.sha !== 'string' || !COMMIT_SHA.test(info.sha)) throw new DownloadError(`${repo}@${revision}: the hub gave no commit sha for the revision`);
  return info.sha;
}

/** Lists a repo's files with sizes and checksums (all of them, or those under `only`). */
export async function listRemoteFiles(repo: string, revision: string, options: HubOptions, only?: string[]): Promise<RemoteFile[]> {
  const files: RemoteFile[] = [];
  try {
    if (only) {
      const infos = await pathsInfo({ repo, paths: only, revision, expand: true, hubUrl: options.hubUrl, accessToken: options.accessToken });
      for (const wanted of only) {
        const info = infos.find((i) => i.path === wanted);
        if (!info || info.type !== 'file') throw new DownloadError(`${repo}@${revision}: ${wanted} is not in the repository`);
        files.push(remoteFile(repo, revision, info));
      }
      return files;
    }
    for await (const info of listFiles({ repo, revision, recursive: true, expand: false, hubUrl: options.hubUrl, accessToken: options.accessToken })) {
      if (info.type === 'file') files.push(remoteFile(repo, revision, info));
    }
    return files;
  } catch (error) {
    if (error instanceof DownloadError) throw error;
    throw new DownloadError(`${repo}@${revision}: could not list files: ${(error as Error).message}`);
  }
}

function remoteFile(repo: string, revision: string, info: { path: string; size: number; oid?: string; lfs?: { oid: string; size: number } }): RemoteFile {
  return {
    repo,
    revision,
    path: info.path,
    size: info.lfs?.size ?? info.size,
    sha256: info.lfs?.oid ?? null,
    gitSha1: info.lfs ? null : (info.oid ?? null),
  };
}

/**
 * Puts one remote file at `dest`: skipped when the manifest says it is there and its size matches,
 * resumed from `dest.part` when a transfer was interrupted, verified before it is renamed into place.
 */
export async function fetchFile(file: RemoteFile, dest: string, manifest: Manifest, manifestKey: string, options: HubOptions): Promise<'present' | 'downloaded'> {
  const known = manifest.files[manifestKey];
  const existing = await stat(dest).then((s) => s.size, () => null);
  if (known && existing === file.size && known.size === file.size && known.sha256 === file.sha256 && known.git_sha1 === file.gitSha1) return 'present';

  await mkdir(dirname(dest), { recursive: true });
  const part = `${dest}.part`;
  const attempts = options.attempts ?? 4;
  for (let attempt = 1; ; attempt++) {
    let have = await stat(part).then((s) => s.size, () => 0);
    if (have > file.size) {
      await rm(part);
      have = 0;
    }
    try {
      if (have < file.size) await transfer(file, part, have, options);
      break;
    } catch (error) {
      if (error instanceof DownloadError || attempt >= attempts) throw error instanceof DownloadError ? error : new DownloadError(`${file.repo}/${file.path}: transfer failed after ${attempt} attempts: ${(error as Error).message}`);
    }
  }
  const size = (await stat(part)).size;
  if (size !== file.size) throw new DownloadError(`${file.repo}/${file.path}: got ${size} bytes, expected ${file.size}`);
  await placeVerified(part, dest, file, manifest, manifestKey);
  return 'downloaded';
}

/**
 * A whole `.part` file checked against its pinned checksum, then renamed into place and recorded in the
 * manifest; a mismatch removes it (the next run refetches). Shared by the hub's files and plain URLs.
 */
export async function placeVerified(
  part: string,
  dest: string,
  file: Pick<RemoteFile, 'repo' | 'revision' | 'path' | 'size' | 'sha256' | 'gitSha1'>,
  manifest: Manifest,
  manifestKey: string,
): Promise<void> {
  const problem = await verify(part, file);
  if (problem) {
    await rm(part);
    throw new DownloadError(`${file.repo}/${file.path}: checksum mismatch (${problem}); the partial file was removed, run again to refetch`);
  }
  await rename(part, dest);
  manifest.files[manifestKey] = {
    repo: file.repo,
    revision: file.revision,
    path: file.path,
    size: file.size,
    sha256: file.sha256,
    git_sha1: file.gitSha1,
    fetched_at: new Date().toISOString(),
  };
}

async function transfer(file: RemoteFile, part: string, offset: number, options: HubOptions): Promise<void> {
  let blob;
  try {
    // xet: false keeps to plain ranged HTTP reads, which is what resuming needs.
    blob = await downloadFile({ repo: file.repo, path: file.path, revision: file.revision, hubUrl: options.hubUrl, accessToken: options.accessToken, xet: false });
  } catch (error) {
    const status = (error as { statusCode?: number }).statusCode;
    if (status === 401 || status === 403) throw new DownloadError(`${file.repo}: access denied (${status}); set HF_TOKEN for gated or private repos`);
    throw error;
  }
  if (!blob) throw new DownloadError(`${file.repo}@${file.revision}: ${file.path} was not found (404)`);
  let done = offset;
  const count = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      done += chunk.length;
      options.onProgress?.(file.path, done, file.size);
      callback(null, chunk);
    },
  });
  const body = Readable.fromWeb(blob.slice(offset).stream() as import('node:stream/web').ReadableStream);
  await pipeline(body, count, createWriteStream(part, { flags: offset > 0 ? 'a' : 'w' }));
}

/** Returns a description of the mismatch, or null when the file is what the hub says it is. */
export async function verify(path: string, file: Pick<RemoteFile, 'size' | 'sha256' | 'gitSha1'>): Promise<string | null> {
  if (file.sha256) {
    const actual = await hashFile(path, 'sha256');
    return actual === file.sha256 ? null : `sha256 ${actual}, expected ${file.sha256}`;
  }
  if (file.gitSha1) {
    const actual = await hashFile(path, 'sha1', `blob ${file.size}\0`);
    return actual === file.gitSha1 ? null : `git sha1 ${actual}, expected ${file.gitSha1}`;
  }
  return null;
}

async function hashFile(path: string, algorithm: 'sha256' | 'sha1', prefix = ''): Promise<string> {
  const hash = createHash(algorithm).update(prefix);
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export async function readManifest(modelsDir: string): Promise<Manifest> {
  try {
    const parsed = JSON.parse(await readFile(join(modelsDir, 'manifest.json'), 'utf8')) as Manifest;
    return parsed.version === 1 && typeof parsed.files === 'object' ? parsed : { version: 1, files: {} };
  } catch {
    return { version: 1, files: {} };
  }
}

/** Written to a temporary file and renamed, so a crash never leaves a half-written manifest. */
export async function writeManifest(modelsDir: string, manifest: Manifest): Promise<void> {
  await mkdir(modelsDir, { recursive: true });
  const path = join(modelsDir, 'manifest.json');
  await writeFile(`${path}.tmp`, JSON.stringify(manifest, null, 2) + '\n');
  await rename(`${path}.tmp`, path);
}

/** Manifest keys are paths relative to the models folder. */
export function manifestKey(modelsDir: string, dest: string): string {
  return relative(modelsDir, dest);
}
