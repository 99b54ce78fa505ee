/** Tiny generated models, written once per test process into a temporary folder. */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTinyQwen } from '../../builder/tiny-models/tiny-qwen.js';
import { writeTinyWhisper, type TinyWhisperFiles } from '../../builder/tiny-models/tiny-whisper.js';

let dir: Promise<string> | null = null;
const tmp = () => (dir ??= mkdtemp(join(tmpdir(), 's2s-tiny-')));

export async function tinyQwenPath(endless = false): Promise<string> {
  return writeTinyQwen(join(await tmp(), endless ? 'tiny-qwen-endless.gguf' : 'tiny-qwen.gguf'), { endless });
}

export async function tinyWhisperFiles(): Promise<TinyWhisperFiles> {
  return writeTinyWhisper(join(await tmp(), 'tiny-whisper'));
}

export async function scratchDir(): Promise<string> {
  return tmp();
}
