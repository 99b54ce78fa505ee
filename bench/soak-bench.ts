/**
 * `npm run bench -- soak`: the robustness suites in their long form, on the test profile: the
 * job-input and audio fuzzers over many more cases, jobs under random transient platform faults,
 * then the load: at least 1,000 sequential turn jobs on one worker, pairs of concurrent turn jobs
 * sharing the one TTS server, and several concurrent live sessions speaking in real time for minutes. Prints the same
 * one summary as `npm test` (faults, bad inputs, jobs, sessions, lost, duplicated, crashes, RSS and
 * listeners start/end) and writes it to .bench/soak-summary.txt. Not part of a plain `npm run bench`.
 *
 * SOAK_FUZZ_CASES, SOAK_FAULT_JOBS, SOAK_TURN_JOBS, SOAK_PAIRS, SOAK_SESSIONS, SOAK_SESSION_TURNS and SOAK_SESSION_ROUNDS
 * change the sizes.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { encodeBase64 } from '../src/audio/base64.js';
import { speak, wavOf } from '../test/fixtures/speech.js';
import { Rng } from '../test/robustness/fuzz.js';
import { runLoad } from '../test/robustness/load-scenario.js';
import { fuzzAudioInputs, fuzzJobInputs, platformFaultLoop } from '../test/robustness/long-loops.js';
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
    sessionRounds: size('SOAK_SESSION_ROUNDS', 2),
  };
  const say = (line: string) => process.stderr.write(`soak: ${line}\n`);
  const seed = robustnessSeed();
  const goodAudio = encodeBase64(wavOf(await speak('Hello there.'), 16_000));
  const fuzzCases = size('SOAK_FUZZ_CASES', 20_000);
  const inputProblems = fuzzJobInputs(fuzzCases, new Rng(seed), goodAudio, tally).problems;
  const audioCases = Math.round(fuzzCases / 10);
  const audioProblems = await fuzzAudioInputs(audioCases, new Rng(seed + 2), tally);
  say(`fuzz: ${fuzzCases} job inputs, ${audioCases} audio inputs, ${inputProblems.length + audioProblems.length} unclear`);
  const faultJobs = size('SOAK_FAULT_JOBS', 200);
  const faultProblems = await platformFaultLoop(faultJobs, new Rng(seed + 20), tally, logs);
  say(`platform faults: ${faultJobs} jobs, ${faultProblems.length} problems`);
  const result = await runLoad({ ...options, tally, logs, progress: say });
  const leaks = findSecrets(logs, { values: result.secrets, audio: true });
  tally.notes.push(
    `${fuzzCases} generated job inputs and ${audioCases} audio inputs: ${inputProblems.length + audioProblems.length} without a clear error${[...inputProblems, ...audioProblems].slice(0, 3).map((p) => `; ${p}`).join('')}`,
    `${faultJobs} jobs under random transient platform faults: ${faultProblems.length} problems${faultProblems.slice(0, 3).map((p) => `; ${p}`).join('')}`,
    `${options.turnJobs} sequential turn jobs, ${options.concurrentPairs} concurrent pairs, ${options.sessionRounds} rounds of ${options.sessions} sessions x ${options.sessionTurns} turns in ${((Date.now() - started) / 60_000).toFixed(1)} min`,
    `latency drift: median of the first ${result.drift.window} turn jobs ${result.drift.firstMedianMs.toFixed(0)} ms, of the last ${result.drift.window} ${result.drift.lastMedianMs.toFixed(0)} ms`,
    `memory by phase (RSS / heap after GC / external, MB): ${result.memory.map((m) => `${m.after}: ${m.rssMb.toFixed(0)} / ${m.heapMb.toFixed(0)} / ${m.externalMb.toFixed(0)}`).join('; ')}`,
    `MaxListenersExceededWarning: ${result.listenerWarnings.length}; log lines checked for secrets: ${logs.length}, found ${leaks.length}`,
  );
  const summary = formatSummary('robustness summary, long form (npm run bench -- soak)', [tally.report()], seed);
  console.log(`\n${summary}\n`);
  await mkdir('.bench', { recursive: true });
  await writeFile('.bench/soak-summary.txt', `${new Date().toISOString()}\n${summary}\n`);
  return [
    summarize('soak: sequential turn job, submit -> COMPLETED', 'ms', result.turnLatenciesMs),
    summarize('soak: concurrent pair on one TTS server, submit -> COMPLETED', 'ms', result.pairLatenciesMs),
    summarize('soak: live session turn, first frame -> metrics', 'ms', result.sessionTurnMs),
  ];
}
