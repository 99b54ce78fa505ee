/**
 * The turn model's load and inference path (worker thread, onnxruntime, sha256 pin) on the tiny
 * generated stand-in, and on the real Smart Turn v3.2 file from the pinned pipecat-ai wheel when it
 * can be had (skipped, with the reason, where PyPI cannot be reached).
 */
import { copyFile, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTinySmartTurn } from '../../builder/tiny-models/tiny-smart-turn.js';
import { ConfigError } from '../../src/errors.js';
import { Logger } from '../../src/log/logger.js';
import { SMART_TURN_V3_2 } from '../../src/models/registry.js';
import { SmartTurnModel } from '../../src/turn/turn-model.js';
import { loadTurnModel } from '../../src/vad/vad.js';
import { speak } from '../fixtures/speech.js';
import { realSmartTurn } from '../helpers/smart-turn-wheel.js';

let dir: string;
let tinyPath: string;
let tiny: SmartTurnModel;
let question: Float32Array;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 's2s-turn-'));
  tinyPath = await writeTinySmartTurn(join(dir, 'tiny-smart-turn.onnx'));
  tiny = await SmartTurnModel.load({ path: tinyPath, sha256: null });
  question = await speak('What is the capital of France?');
});
afterAll(() => tiny?.dispose());

const second = (value: (i: number) => number, seconds = 1) => Float32Array.from({ length: 16_000 * seconds }, (_, i) => value(i));

describe('turn model (tiny stand-in)', () => {
  it('runs the features and the graph in its worker: silence is incomplete, speech complete', async () => {
    const silent = await tiny.predict(new Float32Array(16_000));
    expect(silent.probability).toBeCloseTo(silentProbability(), 5);
    const spoken = await tiny.predict(question);
    expect(spoken.probability).toBeGreaterThan(0.5);
    expect(spoken.ms).toBeGreaterThanOrEqual(spoken.modelMs);
  });

  it('gives verdicts for a turn longer than 8 s, clipped audio and empty audio', async () => {
    const long = await tiny.predict(second((i) => 0.3 * Math.sin(i / 5), 12));
    const clipped = await tiny.predict(second((i) => (i % 30 < 15 ? 1 : -1)));
    const empty = await tiny.predict(new Float32Array(0));
    for (const verdict of [long, clipped, empty]) expect(verdict.probability).toBeGreaterThanOrEqual(0);
    expect(empty.probability).toBeCloseTo(silentProbability(), 5);
  });

  it('drops a request aborted while it waits, and keeps serving the others', async () => {
    const abort = new AbortController();
    const first = tiny.predict(question);
    const dropped = tiny.predict(question, abort.signal);
    abort.abort(new Error('speech resumed'));
    const third = tiny.predict(new Float32Array(16_000));
    await expect(dropped).rejects.toThrow('speech resumed');
    expect((await first).probability).toBeGreaterThan(0.5);
    expect((await third).probability).toBeLessThan(0.5);
  });

  it('stops start-up on a missing, corrupt or swapped file, naming it', async () => {
    const missing = join(dir, 'absent.onnx');
    await expect(SmartTurnModel.load({ path: missing, sha256: null })).rejects.toThrow(new RegExp(`turn model not found at ${missing}`));
    const garbage = join(dir, 'garbage.onnx');
    await writeFile(garbage, 'not an onnx file');
    await expect(SmartTurnModel.load({ path: garbage, sha256: null })).rejects.toThrow(new RegExp(`turn model at ${garbage} could not be loaded`));
    await expect(SmartTurnModel.load({ path: tinyPath, sha256: SMART_TURN_V3_2.sha256 })).rejects.toThrow(/has sha256 [0-9a-f]{64}, expected 2bb02631/);
    await expect(SmartTurnModel.load({ path: missing, sha256: null })).rejects.toBeInstanceOf(ConfigError);
  });

  it('an optional model that cannot load is a warning and no model; a required one is an error', async () => {
    const warnings: string[] = [];
    const log = new Logger({ level: 'WARN', jsonLines: true, write: (line) => warnings.push((JSON.parse(line) as { message: string }).message) });
    const missing = join(dir, 'absent.onnx');
    expect(await loadTurnModel({ mode: 'optional', path: missing, sha256: null }, log)).toBeNull();
    expect(warnings).toEqual([expect.stringContaining(`turn model not found at ${missing}`)]);
    await expect(loadTurnModel({ mode: 'required', path: missing, sha256: null })).rejects.toThrow(ConfigError);
  });
});

/** The tiny model on silence only: every feature -1.5, sigmoid(10 * 0 - 1). */
function silentProbability(): number {
  return 1 / (1 + Math.exp(1));
}

describe('turn model (real Smart Turn v3.2 from the pinned pipecat-ai wheel)', async () => {
  const real = await realSmartTurn();
  if (real.skip !== null) console.warn(`skipping the real Smart Turn tests: ${real.skip}`);
  let model: SmartTurnModel;
  beforeAll(async () => {
    if (real.path) model = await SmartTurnModel.load({ path: real.path, sha256: SMART_TURN_V3_2.sha256 });
  });
  afterAll(() => model?.dispose());

  it.skipIf(real.skip !== null)('is the pinned file, and loads as production loads it', async () => {
    expect((await readFile(real.path!)).length).toBe(SMART_TURN_V3_2.bytes);
  });

  it.skipIf(real.skip !== null)('gives the same probability for the same audio, in 0..1', async () => {
    const [a, b] = [await model.predict(question), await model.predict(question)];
    expect(a.probability).toBe(b.probability);
    expect(a.probability).toBeGreaterThanOrEqual(0);
    expect(a.probability).toBeLessThanOrEqual(1);
  });

  it.skipIf(real.skip !== null)('gives verdicts without error for a turn longer than 8 s, silence only and clipped audio', async () => {
    const long = new Float32Array(16_000 * 10);
    for (let at = 0; at + question.length <= long.length; at += question.length + 8_000) long.set(question, at);
    const clipped = question.map((v) => Math.max(-1, Math.min(1, v * 20)));
    for (const audio of [long, new Float32Array(16_000 * 2), clipped]) {
      const verdict = await model.predict(audio);
      expect(verdict.probability).toBeGreaterThanOrEqual(0);
      expect(verdict.probability).toBeLessThanOrEqual(1);
    }
  });

  it.skipIf(real.skip !== null)('can be disposed while a prediction runs (terminating onnxruntime mid-run aborted the process)', async () => {
    // A fresh model per try; the dispose lands at different points of features and inference.
    for (const delayMs of [0, 20, 40, 70, 100, 150]) {
      const fresh = await SmartTurnModel.load({ path: real.path!, sha256: SMART_TURN_V3_2.sha256 });
      const running = fresh.predict(question).then(
        () => 'verdict',
        (error: Error) => error.message,
      );
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      await fresh.dispose();
      expect(await running).toMatch(/verdict|disposed/);
      await expect(fresh.predict(question)).rejects.toThrow(/disposed/);
    }
  });

  it.skipIf(real.skip !== null)('refuses the real file under a wrong pin (a corrupt copy)', async () => {
    const copy = join(dir, 'corrupt.onnx');
    await copyFile(real.path!, copy);
    const bytes = await readFile(copy);
    bytes[bytes.length >> 1]! ^= 0xff;
    await writeFile(copy, bytes);
    await expect(SmartTurnModel.load({ path: copy, sha256: SMART_TURN_V3_2.sha256 })).rejects.toThrow(new RegExp(`turn model at ${copy} has sha256`));
  });
});
