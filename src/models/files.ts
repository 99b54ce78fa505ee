import { open, stat } from 'node:fs/promises';
import { ConfigError } from '../errors.js';

/** Fails with a ConfigError naming the file, and how to get it, when a model file is missing or empty. */
export async function assertReadableFile(path: string, what: string, fetchHint = 'fetch the models with: npm run models'): Promise<void> {
  let size: number;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new Error('not a file');
    size = info.size;
  } catch {
    throw new ConfigError(`${what} file is missing: ${path} (${fetchHint})`);
  }
  if (size === 0) throw new ConfigError(`${what} file is empty: ${path} (${fetchHint})`);
}

/**
 * Checks a GGUF file's header (magic, version, sane counts) before it reaches llama.cpp, whose
 * loader can hang on a file that is not GGUF at all.
 */
export async function assertGgufHeader(path: string, what: string): Promise<void> {
  const file = await open(path, 'r');
  try {
    const header = Buffer.alloc(24);
    const { bytesRead } = await file.read(header, 0, 24, 0);
    const magic = header.toString('ascii', 0, 4);
    const version = header.readUInt32LE(4);
    const tensors = header.readBigUInt64LE(8);
    const keys = header.readBigUInt64LE(16);
    if (bytesRead < 24 || magic !== 'GGUF' || (version !== 2 && version !== 3) || tensors > 1_000_000n || keys > 100_000n) {
      throw new ConfigError(`${what} file is corrupt (not a GGUF v2/v3 file): ${path} (fetch it again with: npm run models)`);
    }
  } finally {
    await file.close();
  }
}
