/**
 * The real Smart Turn v3.2 model for tests and benches: the `pipecat-ai` wheel on PyPI ships the
 * same file the builder fetches from the hub (pipecat/audio/turn/smart_turn/data/). Downloaded once
 * with pip at a pinned version (no retries: a machine without PyPI gives up at once), checked by
 * sha256 (wheel and model), cached in .cache/ (gitignored), never committed. Where it cannot be had,
 * the caller skips with the reason.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { SMART_TURN_V3_2 } from '../../src/models/registry.js';
import { checkPinned, pinnedFile } from './pinned-download.js';

export const PIPECAT_WHEEL = {
  version: '1.14.0',
  file: 'pipecat_ai-1.14.0-py3-none-any.whl',
  sha256: '0352f504b44e78bdf524e45af4bc759601c835b9b7dc195efe5e03384b974a44',
  modelPath: 'pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx',
} as const;

const CACHE = resolve('.cache', 'smart-turn');
const run = promisify(execFile);

export type RealSmartTurn = { path: string; skip: null } | { path: null; skip: string };

let once: Promise<RealSmartTurn> | null = null;

/** The cached real model file, fetched on first use; `skip` says why there is none. */
export function realSmartTurn(): Promise<RealSmartTurn> {
  return (once ??= fetchModel().catch((error: Error) => ({ path: null, skip: `real Smart Turn model unavailable: ${error.message}` })));
}

async function fetchModel(): Promise<RealSmartTurn> {
  const path = await pinnedFile(join(CACHE, SMART_TURN_V3_2.file), SMART_TURN_V3_2.sha256, async (dir) => {
    const pip = await findPip();
    await run(pip[0]!, [...pip.slice(1), 'download', '--no-deps', '--retries', '0', '--timeout', '20', '--disable-pip-version-check', '-d', dir, `pipecat-ai==${PIPECAT_WHEEL.version}`], { timeout: 120_000 });
    checkPinned(PIPECAT_WHEEL.file, await readFile(join(dir, PIPECAT_WHEEL.file)), PIPECAT_WHEEL.sha256);
    // A wheel is a zip; Python (there with pip) reads it.
    const extract = `import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))`;
    const { stdout } = await run('python3', ['-c', extract, join(dir, PIPECAT_WHEEL.file), PIPECAT_WHEEL.modelPath], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  });
  return { path, skip: null };
}

/** A working pip: python3 -m pip, else pip3 or pip on the PATH. */
async function findPip(): Promise<string[]> {
  for (const candidate of [['python3', '-m', 'pip'], ['pip3'], ['pip']]) {
    const ok = await run(candidate[0]!, [...candidate.slice(1), '--version'], { timeout: 20_000 }).then(() => true, () => false);
    if (ok) return candidate;
  }
  throw new Error('no pip found (python3 -m pip, pip3, pip)');
}
