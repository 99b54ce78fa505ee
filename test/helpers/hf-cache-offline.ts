/**
 * Looks a file up in a Hugging Face cache the way Python's huggingface_hub does with the hub offline
 * (file_download.py, `try_to_load_from_cache`): the revision is replaced by the whole content of
 * `refs/<revision>` when that file exists (no trimming), and the file must then be under
 * `snapshots/<that revision>/`. Null where huggingface_hub finds nothing, and so where transformers'
 * `from_pretrained` fails offline. Written from the Python code, independently of the builder's own check.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export function lookUpOffline(cacheDir: string, repo: string, revision: string, filename: string): string | null {
  const repoCache = join(cacheDir, `models--${repo.replaceAll('/', '--')}`);
  if (!existsSync(repoCache)) return null;
  let commit = revision;
  const refFile = join(repoCache, 'refs', revision);
  if (existsSync(refFile) && statSync(refFile).isFile()) commit = readFileSync(refFile, 'utf8');
  const cached = join(repoCache, 'snapshots', commit, filename);
  return existsSync(cached) && statSync(cached).isFile() ? cached : null;
}
