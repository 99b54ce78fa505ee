/**
 * The tiny random-weight TTS model in the published layout (`python -m s2s_tts.tiny_model`), made
 * once per test process in a temporary folder, for tests that run the real engine on CPU.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { run } from '../fixtures/speech.js';
import { ttsPython } from './tts-sidecar.js';

let made: Promise<string> | null = null;

export function tinyTtsModelDir(): Promise<string> {
  made ??= (async () => {
    const dir = join(await mkdtemp(join(tmpdir(), 's2s-tiny-tts-')), 'tiny-vibevoice');
    await run('env', [`PYTHONPATH=${resolve('tts-server', 'src')}`, ttsPython(), '-m', 's2s_tts.tiny_model', dir]);
    return dir;
  })();
  return made;
}
