/**
 * What the robustness suites did, counted the same way in `npm test` (short form) and
 * `npm run bench -- soak` (long form), and printed as ONE summary: faults injected, bad inputs
 * tried, jobs and sessions run, results lost and duplicated, crashes, RSS and listener counts.
 *
 * Under vitest each test file runs in its own worker process, so each file writes its counts to a
 * JSON file in a folder the global setup provides; the global teardown adds them up and prints.
 */
import { getEventListeners } from 'node:events';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export interface Counts {
  faultsInjected: number;
  badInputsTried: number;
  jobsRun: number;
  sessionsRun: number;
  resultsLost: number;
  resultsDuplicated: number;
  /** Uncaught exceptions, unhandled rejections and unexpected process exits seen. */
  crashes: number;
}

export interface ResourceSample {
  rssMb: number;
  heapMb: number;
  /** Memory of Buffers and ArrayBuffers and other V8-tracked native allocations (outside the heap, inside RSS). */
  externalMb: number;
  openFds: number;
  /** Abort listeners on the worker's shutdown signal plus listeners on `process`. */
  listeners: number;
}

export interface SuiteReport extends Counts {
  suite: string;
  /** Resources at the start and the end of a load run, when the suite measured them. */
  resources?: { start: ResourceSample; end: ResourceSample; eventLoopDelayP99Ms: number };
  notes?: string[];
}

export const emptyCounts = (): Counts => ({
  faultsInjected: 0,
  badInputsTried: 0,
  jobsRun: 0,
  sessionsRun: 0,
  resultsLost: 0,
  resultsDuplicated: 0,
  crashes: 0,
});

/** Counts for one suite; uncaught errors of the process count as crashes while it is open. */
export class Tally {
  readonly counts = emptyCounts();
  resources: SuiteReport['resources'];
  readonly notes: string[] = [];
  readonly #onCrash = () => this.counts.crashes++;

  constructor(readonly suite: string) {
    // The monitor event only watches: it does not keep a crashing process alive.
    process.on('uncaughtExceptionMonitor', this.#onCrash);
    process.on('unhandledRejection', this.#onCrash);
  }

  add(key: keyof Counts, n = 1): void {
    this.counts[key] += n;
  }

  report(): SuiteReport {
    return { suite: this.suite, ...this.counts, ...(this.resources ? { resources: this.resources } : {}), ...(this.notes.length ? { notes: this.notes } : {}) };
  }

  /** Writes this suite's report where the summary will find it, and stops counting crashes. */
  save(dir: string): void {
    process.off('uncaughtExceptionMonitor', this.#onCrash);
    process.off('unhandledRejection', this.#onCrash);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${this.suite}.json`), JSON.stringify(this.report()));
  }
}

export function readReports(dir: string): SuiteReport[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
  return names.sort().map((n) => JSON.parse(readFileSync(join(dir, n), 'utf8')) as SuiteReport);
}

/** The one summary, from every suite's report. */
export function formatSummary(title: string, reports: SuiteReport[], seed: number): string {
  const total = emptyCounts();
  for (const r of reports) for (const key of Object.keys(total) as (keyof Counts)[]) total[key] += r[key];
  const load = reports.find((r) => r.resources)?.resources;
  const mb = (n: number) => `${n.toFixed(0)} MB`;
  const lines = [
    `${title} (seed ${seed}; suites: ${reports.map((r) => r.suite).join(', ') || 'none'})`,
    `  faults injected      ${total.faultsInjected}`,
    `  bad inputs tried     ${total.badInputsTried}`,
    `  jobs run             ${total.jobsRun}`,
    `  sessions run         ${total.sessionsRun}`,
    `  results lost         ${total.resultsLost}`,
    `  results duplicated   ${total.resultsDuplicated}`,
    `  crashes              ${total.crashes}`,
  ];
  if (load) {
    lines.push(
      `  RSS start/end        ${mb(load.start.rssMb)} / ${mb(load.end.rssMb)} (heap after GC ${mb(load.start.heapMb)} / ${mb(load.end.heapMb)}, external ${mb(load.start.externalMb)} / ${mb(load.end.externalMb)})`,
      `  listeners start/end  ${load.start.listeners} / ${load.end.listeners}`,
      `  open fds start/end   ${load.start.openFds} / ${load.end.openFds}`,
      `  event-loop delay p99 ${load.eventLoopDelayP99Ms.toFixed(1)} ms`,
    );
  } else {
    lines.push('  RSS, listeners       not measured (the load suite did not run)');
  }
  for (const r of reports) for (const note of r.notes ?? []) lines.push(`  ${r.suite}: ${note}`);
  return lines.join('\n');
}

/** The seed of every generated case: ROBUSTNESS_SEED, or a fixed default so runs repeat. */
export function robustnessSeed(env: NodeJS.ProcessEnv = process.env): number {
  const seed = Number(env['ROBUSTNESS_SEED'] ?? '1414');
  return Number.isInteger(seed) ? seed : 1414;
}

// ---- resources -------------------------------------------------------------------------------

let gc: (() => void) | null = null;
/** A full garbage collection, so heap figures compare like with like. */
export function collectGarbage(): void {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
}

export function openFileDescriptors(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return -1;
  }
}

const PROCESS_EVENTS = ['exit', 'uncaughtException', 'unhandledRejection', 'warning', 'SIGTERM', 'SIGINT'] as const;

export function sampleResources(shutdown?: AbortSignal): ResourceSample {
  collectGarbage();
  const memory = process.memoryUsage();
  const processListeners = PROCESS_EVENTS.reduce((n, event) => n + process.listenerCount(event), 0);
  return {
    rssMb: memory.rss / 2 ** 20,
    heapMb: memory.heapUsed / 2 ** 20,
    externalMb: memory.external / 2 ** 20,
    openFds: openFileDescriptors(),
    listeners: (shutdown ? getEventListeners(shutdown, 'abort').length : 0) + processListeners,
  };
}

/** Event-loop delay while a load runs; `stop()` gives its p99 in ms. */
export function watchEventLoop(): { stop(): number } {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  return {
    stop() {
      histogram.disable();
      return histogram.percentile(99) / 1e6;
    },
  };
}

/** Every MaxListenersExceededWarning the process prints while `watch` is open. */
export function watchListenerWarnings(): { warnings: string[]; stop(): void } {
  const warnings: string[] = [];
  const onWarning = (warning: Error) => {
    if (warning.name === 'MaxListenersExceededWarning') warnings.push(warning.message);
  };
  process.on('warning', onWarning);
  return { warnings, stop: () => process.off('warning', onWarning) };
}
