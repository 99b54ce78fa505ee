/**
 * The turn model outlives its worker thread: a thread that dies is started again from the same bytes
 * (its requests, and those made until it is back, reject at once: those turns end on the transcript
 * cue), a bounded number of times; each death and restart is logged once. The real Smart Turn v3.2
 * file (skipped, with the reason, where it cannot be had). The threads come from an injected factory
 * that keeps a handle on each, so a test can end one.
 */
import { spawn } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { Logger } from '../../src/log/logger.js';
import { SMART_TURN_V3_2 } from '../../src/models/registry.js';
import type { TurnWorkerRequest } from '../../src/turn/smart-turn-worker.js';
import { SmartTurnModel, type TurnModelOptions } from '../../src/turn/turn-model.js';
import type { CreateTurnWorker } from '../../src/turn/turn-worker-thread.js';
import { speak } from '../fixtures/speech.js';
import { realSmartTurn } from '../helpers/smart-turn-wheel.js';

interface LogLine {
  level: string;
  message: string;
  [field: string]: unknown;
}

/** A logger whose lines are kept; `seen` resolves once `count` lines of a level have been written. */
function capturedLog() {
  const lines: LogLine[] = [];
  const waiters = new Set<() => void>();
  const log = new Logger({
    level: 'DEBUG',
    jsonLines: true,
    write: (text) => {
      lines.push(JSON.parse(text) as LogLine);
      for (const wake of [...waiters]) wake();
    },
  });
  const at = (level: string) => lines.filter((line) => line.level === level);
  const seen = (level: string, count = 1) =>
    new Promise<void>((resolve) => {
      const wake = () => {
        if (at(level).length < count) return;
        waiters.delete(wake);
        resolve();
      };
      waiters.add(wake);
      wake();
    });
  return { log, at, seen };
}

/** A worker factory that keeps every thread it makes (`make` picks the nth; default the real one) and notes which have exited. */
function recordingWorkers(make: (n: number, entry: URL, options: ConstructorParameters<typeof Worker>[1]) => Worker = (_, entry, options) => new Worker(entry, options)) {
  const workers: Worker[] = [];
  const exited = new Set<Worker>();
  const made: ((worker: Worker) => void)[] = [];
  const create: CreateTurnWorker = (entry, options) => {
    const worker = make(workers.length, entry, options);
    workers.push(worker);
    worker.once('exit', () => exited.add(worker));
    made.shift()?.(worker);
    return worker;
  };
  /** The next thread made from now on. */
  const next = () => new Promise<Worker>((resolve) => made.push(resolve));
  return { create, workers, exited, next };
}

/**
 * Keeps a worker's predict messages on this side: the request is in flight for the model while the
 * thread stays idle, so ending it is safe (ending onnxruntime mid-run aborts the whole process).
 */
function holdPredictions(worker: Worker): void {
  const post = worker.postMessage.bind(worker);
  worker.postMessage = (message: TurnWorkerRequest, transfer?: Parameters<Worker['postMessage']>[1]) => {
    if (message.type !== 'predict') post(message, transfer);
  };
}

/** A thread that crashes as soon as it starts, as an onnxruntime failure in it would. */
const crashingWorker = () => new Worker('throw new Error("turn worker double crashed")', { eval: true });

describe('turn model worker deaths (real Smart Turn v3.2)', async () => {
  const real = await realSmartTurn();
  if (real.skip !== null) console.warn(`skipping the turn model restart tests: ${real.skip}`);
  const question = await speak('What is the capital of France?');
  const load = (options: TurnModelOptions) => SmartTurnModel.load({ path: real.path!, sha256: SMART_TURN_V3_2.sha256 }, options);

  it.skipIf(real.skip !== null)('a thread that dies mid-prediction: its requests reject, one warning, and a fresh thread gives the same verdicts', async () => {
    const logs = capturedLog();
    const threads = recordingWorkers();
    // Fake timers: the model stays in its restarting state until the test runs the backoff.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const model = await load({ log: logs.log, createWorker: threads.create });
    try {
      const before = await model.predict(question);
      expect(model.health).toEqual({ state: 'up', restarts: 0 });

      const first = threads.workers[0]!;
      holdPredictions(first);
      const outcomes = Promise.allSettled([model.predict(question), model.predict(question)]);
      await first.terminate();
      const [inFlight, queued] = await outcomes;
      for (const outcome of [inFlight, queued]) {
        expect(outcome.status).toBe('rejected');
        expect(((outcome as PromiseRejectedResult).reason as Error).message).toMatch(/the turn model's worker exited \(code \d+\)/);
      }

      expect(model.health).toEqual({ state: 'restarting', restarts: 0 });
      await expect(model.predict(question)).rejects.toThrow(/restarting/);
      expect(logs.at('WARN')).toEqual([expect.objectContaining({ message: expect.stringContaining('turn model worker died'), reason: expect.stringMatching(/worker exited/) })]);

      const restarted = logs.seen('INFO');
      vi.runOnlyPendingTimers();
      await restarted;
      expect(logs.at('INFO')).toEqual([expect.objectContaining({ message: 'turn model worker restarted', restarts: 1 })]);
      expect(model.health).toEqual({ state: 'up', restarts: 1 });
      const after = await model.predict(question);
      expect(after.probability).toBe(before.probability);
      expect(logs.at('WARN')).toHaveLength(1);
      expect(logs.at('ERROR')).toHaveLength(0);
    } finally {
      vi.useRealTimers();
      await model.dispose();
    }
    expect(threads.workers).toHaveLength(2);
    expect(threads.exited.size).toBe(2);
  });

  it.skipIf(real.skip !== null)('a thread that dies at once every time: after 3 restarts the model is off, one error logged, predictions reject at once', async () => {
    const logs = capturedLog();
    // The first thread is the real one; every later one crashes as it starts.
    const threads = recordingWorkers((n, entry, options) => (n === 0 ? new Worker(entry, options) : crashingWorker()));
    const model = await load({ log: logs.log, createWorker: threads.create, maxRestarts: 3, restartDelayMs: 1 });
    try {
      await threads.workers[0]!.terminate();
      await logs.seen('ERROR');
      expect(model.health).toEqual({ state: 'off', restarts: 3 });
      expect(threads.workers).toHaveLength(4);
      // One warning per death that was followed by a restart: the real thread's, then two crashed restarts.
      expect(logs.at('WARN')).toHaveLength(3);
      expect(logs.at('WARN').slice(1)).toEqual([
        expect.objectContaining({ reason: expect.stringContaining('turn worker double crashed') }),
        expect.objectContaining({ reason: expect.stringContaining('turn worker double crashed') }),
      ]);
      expect(logs.at('ERROR')).toEqual([expect.objectContaining({ message: expect.stringContaining('turn model off for the rest of this process'), deaths: 4, restarts: 3 })]);
      expect(logs.at('INFO')).toHaveLength(0);
      await expect(model.predict(question)).rejects.toThrow(/the turn model is off: its worker died 4 times/);
    } finally {
      await model.dispose();
    }
    expect(threads.exited.size).toBe(4);
  });

  it.skipIf(real.skip !== null)('dispose while a restart waits, or while the fresh thread loads, leaves no thread behind', async () => {
    const logs = capturedLog();
    const waiting = recordingWorkers();
    const idle = await load({ log: logs.log, createWorker: waiting.create, restartDelayMs: 3_600_000 });
    await waiting.workers[0]!.terminate();
    await logs.seen('WARN');
    await idle.dispose();
    expect(waiting.workers).toHaveLength(1);
    expect(idle.health).toEqual({ state: 'off', restarts: 0 });
    await expect(idle.predict(question)).rejects.toThrow(/disposed/);

    const loading = recordingWorkers();
    const busy = await load({ log: logs.log, createWorker: loading.create, restartDelayMs: 0 });
    const fresh = loading.next();
    await loading.workers[0]!.terminate();
    await fresh;
    await busy.dispose();
    expect(loading.workers).toHaveLength(2);
    expect(loading.exited.size).toBe(2);
    expect(busy.health.state).toBe('off');
    // The restart that was loading never came up.
    expect(logs.at('INFO')).toHaveLength(0);
  });

  it.skipIf(real.skip !== null)('neither a restart that waits nor a restarted idle thread keeps the process alive', async () => {
    // In a child process that never disposes its models: it must end on its own once its script is done.
    const script = `
      import { Worker } from 'node:worker_threads';
      import { Logger } from './src/log/logger.ts';
      import { SmartTurnModel } from './src/turn/turn-model.ts';
      const file = { path: ${JSON.stringify(real.path)}, sha256: null };
      const threads = [];
      const createWorker = (entry, options) => { const worker = new Worker(entry, options); threads.push(worker); return worker; };
      const quiet = new Logger({ level: 'ERROR', jsonLines: true, write: () => {} });
      const waiting = await SmartTurnModel.load(file, { log: quiet, createWorker, restartDelayMs: 3600000 });
      await threads[0].terminate();
      let restarted;
      const back = new Promise((resolve) => (restarted = resolve));
      const log = new Logger({ level: 'INFO', jsonLines: true, write: (line) => line.includes('restarted') && restarted() });
      const model = await SmartTurnModel.load(file, { log, createWorker, restartDelayMs: 0 });
      // The wait before a restart does not hold the process either: this script holds it until the restart.
      const hold = setInterval(() => {}, 1000);
      await threads[1].terminate();
      await back;
      clearInterval(hold);
      console.log(JSON.stringify([waiting.health, model.health]));
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    onTestFinished(() => void child.kill());
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual([
      { state: 'restarting', restarts: 0 },
      { state: 'up', restarts: 1 },
    ]);
  });
});
