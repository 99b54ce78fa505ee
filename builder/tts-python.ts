/**
 * The builder's two calls into the TTS engine's Python package (tts-server/, `s2s_tts`), by their CLIs:
 *   python -m s2s_tts.voices convert PT_FILES... --out VOICES_DIR --model-config CONFIG
 *                                                   upstream's pickled presets -> safetensors, checked to fit the model
 *   python -m s2s_tts.tiny_model OUT_DIR                             the test profile's tiny model folder
 */
import { spawn } from 'node:child_process';
import { rename, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';

/** Runs `python -m module args...`, its output passed through; rejects with the command and exit code. */
function runPython(python: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    child.once('error', (error: NodeJS.ErrnoException) =>
      reject(new Error(`cannot run ${python} (${error.code ?? error.message}): make the engine's venv with \`bash tts-server/setup-venv.sh\` or set S2S_TTS_PYTHON`)),
    );
    child.once('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`${python} ${args.join(' ')} failed (${signal ?? `exit ${code}`})`))));
  });
}

const exists = (path: string) => stat(path).then((s) => s.size > 0, () => false);

/** The presets whose converted `<voices>/<name>.safetensors` is not there yet. */
export async function missingVoices(presets: string[], voicesDir: string): Promise<string[]> {
  const missing: string[] = [];
  for (const preset of presets) if (!(await exists(join(voicesDir, `${basename(preset, '.pt')}.safetensors`)))) missing.push(preset);
  return missing;
}

export async function convertVoices(python: string, presets: string[], voicesDir: string, modelConfig: string): Promise<void> {
  await runPython(python, ['-m', 's2s_tts.voices', 'convert', ...presets, '--out', voicesDir, '--model-config', modelConfig]);
  const still = await missingVoices(presets, voicesDir);
  if (still.length > 0) throw new Error(`s2s_tts.voices convert did not write ${still.map((p) => `${basename(p, '.pt')}.safetensors`).join(', ')} in ${voicesDir}`);
}

/**
 * The tiny random-weight TTS model of the test profile, in the published layout. Made once: a folder that
 * already has its config, weights and tokenizer is kept. Written beside and renamed, so an interrupted run never
 * leaves half a model.
 */
export async function makeTinyTtsModel(python: string, modelDir: string): Promise<'present' | 'written'> {
  const complete = await Promise.all(['config.json', 'model.safetensors', join('tokenizer', 'tokenizer.json')].map((f) => exists(join(modelDir, f))));
  if (complete.every(Boolean)) return 'present';
  const tmp = `${modelDir}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  await runPython(python, ['-m', 's2s_tts.tiny_model', tmp]);
  await rm(modelDir, { recursive: true, force: true });
  await rename(tmp, modelDir);
  return 'written';
}
