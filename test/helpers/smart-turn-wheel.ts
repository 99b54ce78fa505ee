/**
 * The real Smart Turn v3.2 model for tests and benches: the `pipecat-ai` wheel on PyPI ships the
 * same file the builder fetches from the hub (pipecat/audio/turn/smart_turn/data/). Downloaded once
 * with pip at a pinned version (no retries: a machine without PyPI gives up at once), checked by
 * sha256 (wheel and model), cached in .cache/ (gitignored), never committed. Where it cannot be had,
 * the caller skips with the reason.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { SMART_TURN_V3_2 } from '../../src/models/registry.js';

export const PIPECAT_WHEEL = {
  version: '1.14.0',
  file: 'pipecat_ai-1.14.0-py3-none-any.whl',
  sha256: '0352f504b44e78bdf524e45af4bc759601c835b9b7dc195efe5e03384b974a44',
  modelPath: 'pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx',
} as const;

const CACHE = resolve('.cache', 'smart-turn');
const run = promisify(execFile);
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

export type RealSmartTurn = { path: string; skip: null } | { path: null; skip: string };

let once: Promise<RealSmartTurn> | null = null;

/** The cached real model file, fetched on first use; `skip` says why there is none. */
export function realSmartTurn(): Promise<RealSmartTurn> {
  return (once ??= fetchModel().catch((error: Error) => ({ path: null, skip: `real Smart Turn model unavailable: ${error.message}` })));
}

async function fetchModel(): Promise<RealSmartTurn> {
  const path = join(CACHE, SMART_TURN_V3_2.file);
  if (existsSync(path) && sha256(await readFile(path)) === SMART_TURN_V3_2.sha256) return { path, skip: null };
  const dir = await mkdtemp(join(tmpdir(), 'pipecat-wheel-'));
  try {
    const pip = await findPip();
    await run(pip[0]!, [...pip.slice(1), 'download', '--no-deps', '--retries', '0', '--timeout', '20', '--disable-pip-version-check', '-d', dir, `pipecat-ai==${PIPECAT_WHEEL.version}`], { timeout: 120_000 });
    const wheel = await readFile(join(dir, PIPECAT_WHEEL.file));
    if (sha256(wheel) !== PIPECAT_WHEEL.sha256) throw new Error(`${PIPECAT_WHEEL.file} has sha256 ${sha256(wheel)}, pinned ${PIPECAT_WHEEL.sha256}`);
    // A wheel is a zip; Python (there with pip) reads it.
    const extract = `import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))`;
    const { stdout } = await run('python3', ['-c', extract, join(dir, PIPECAT_WHEEL.file), PIPECAT_WHEEL.modelPath], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 });
    if (sha256(stdout) !== SMART_TURN_V3_2.sha256) throw new Error(`${PIPECAT_WHEEL.modelPath} in the wheel has sha256 ${sha256(stdout)}, pinned ${SMART_TURN_V3_2.sha256}`);
    await mkdir(CACHE, { recursive: true });
    await writeFile(`${path}.part`, stdout);
    await rename(`${path}.part`, path);
    return { path, skip: null };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A working pip: python3 -m pip, else pip3 or pip on the PATH. */
async function findPip(): Promise<string[]> {
  for (const candidate of [['python3', '-m', 'pip'], ['pip3'], ['pip']]) {
    const ok = await run(candidate[0]!, [...candidate.slice(1), '--version'], { timeout: 20_000 }).then(() => true, () => false);
    if (ok) return candidate;
  }
  throw new Error('no pip found (python3 -m pip, pip3, pip)');
}
