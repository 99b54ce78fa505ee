/**
 * `npm run bench -- soak`: the robustness suites' load in its long form, on the test profile: at
 * least 1,000 sequential turn jobs on one worker, pairs of concurrent turn jobs sharing the one TTS
 * server, and several concurrent live sessions speaking in real time for minutes. Prints the same
 * one summary as `npm test` (faults, bad inputs, jobs, sessions, lost, duplicated, crashes, RSS and
 * listeners start/end) and writes it to .bench/soak-summary.txt. Not part of a plain `npm run bench`.
 *
 * SOAK_TURN_JOBS, SOAK_PAIRS, SOAK_SESSIONS and SOAK_SESSION_TURNS change the sizes.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { runLoad } from '../test/robustness/load-scenario.js';
import { findSecrets } from '../test/robustness/secrets.js';
import { formatSummary, robustnessSeed, Tally } from '../test/robustness/tally.js';
import { summarize, type BenchResult } from './stats.js';

const size = (name: string, fallback: number) => {
  const value = Number(process.env[name] ?? fallback);
  return Number.isInteger(value) && value >= 0 ? value : fallback;
};

export async function benchSoak(): Promise<BenchResult[]> {
  const tally = new Tally('soak');
  const logs: string[] = [];
  const started = Date.now();
  const options = {
    turnJobs: size('SOAK_TURN_JOBS', 1_000),
    concurrentPairs: size('SOAK_PAIRS', 20),
    sessions: size('SOAK_SESSIONS', 3),
    sessionTurns: size('SOAK_SESSION_TURNS', 25),
  };
  const result = await runLoad({ ...options, tally, logs, progress: (line) => process.stderr.write(`soak: ${line}\n`) });
  const leaks = findSecrets(logs, { values: result.secrets, audio: true });
  tally.notes.push(
    `${options.turnJobs} sequential turn jobs, ${options.concurrentPairs} concurrent pairs, ${options.sessions} sessions x ${options.sessionTurns} turns in ${((Date.now() - started) / 60_000).toFixed(1)} min`,
    `latency drift: median of the first ${result.drift.window} turn jobs ${result.drift.firstMedianMs.toFixed(0)} ms, of the last ${result.drift.window} ${result.drift.lastMedianMs.toFixed(0)} ms`,
    `MaxListenersExceededWarning: ${result.listenerWarnings.length}; log lines checked for secrets: ${logs.length}, found ${leaks.length}`,
  );
  const summary = formatSummary('robustness summary, long form (npm run bench -- soak)', [tally.report()], robustnessSeed());
  console.log(`\n${summary}\n`);
  await mkdir('.bench', { recursive: true });
  await writeFile('.bench/soak-summary.txt', `${new Date().toISOString()}\n${summary}\n`);
  return [
    summarize('soak: sequential turn job, submit -> COMPLETED', 'ms', result.turnLatenciesMs),
    summarize('soak: concurrent pair on one TTS server, submit -> COMPLETED', 'ms', result.pairLatenciesMs),
    summarize('soak: live session turn, first frame -> metrics', 'ms', result.sessionTurnMs),
  ];
}
