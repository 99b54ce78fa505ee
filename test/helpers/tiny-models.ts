/** Tiny generated models, written once per test process into a temporary folder. */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTinyQwen, type TinyQwenOptions } from '../../builder/tiny-models/tiny-qwen.js';
import { writeTinyWhisper, type TinyWhisperFiles } from '../../builder/tiny-models/tiny-whisper.js';

let dir: Promise<string> | null = null;
const tmp = () => (dir ??= mkdtemp(join(tmpdir(), 's2s-tiny-')));

/** The tiny Qwen (`true` for the endless variant, kept for older callers), written once per variant. */
export async function tinyQwenPath(variant: boolean | TinyQwenOptions = {}): Promise<string> {
  const options: TinyQwenOptions = typeof variant === 'boolean' ? { endless: variant } : variant;
  const name = ['tiny-qwen', options.endless ? 'endless' : '', options.badToolCall ? 'bad-tool-call' : '', options.textBeforeCall ? 'text-before-call' : ''].filter(Boolean).join('-');
  return writeTinyQwen(join(await tmp(), `${name}.gguf`), options);
}

export async function tinyWhisperFiles(): Promise<TinyWhisperFiles> {
  return writeTinyWhisper(join(await tmp(), 'tiny-whisper'));
}

export async function scratchDir(): Promise<string> {
  return tmp();
}
