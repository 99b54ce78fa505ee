/**
 * Worker runtime benchmarks, each measuring one thing:
 *  - event latency: a handler yields an event -> a runpod-sdk stream client receives it through the local API
 *  - job-to-job gap: one job's handler finishes -> the next queued job's first event
 *  - start to first job-take, runtime only: the worker runtime bundled with the scripted handler double
 *  - cold start to first job-take of dist/handler.mjs on the test profile (all four engines, tiny models)
 *  - idle SIGTERM to exit
 * The worker runs as its own process; the local API and the client share this process.
 */
import { build } from 'esbuild';
import { testProfileEnv } from '../test/helpers/test-profile.js';
import { spawn } from 'node:child_process';
import { LocalRunpodApi } from '../handler/local/runpod-api.js';
import { sdkEndpoint } from '../test/helpers/sdk.js';
import { summarize, type BenchResult } from './stats.js';

const now = () => performance.timeOrigin + performance.now();

function startWorker(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? -1)));
  return { child, exited, stderr: () => stderr };
}

async function waitUntil(probe: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error('benchmark: timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

const DOUBLE_WORKER = ['--import', 'tsx', 'test/doubles/scripted-worker-double.ts'];

export async function benchWorker(): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  const api = await LocalRunpodApi.start({ port: 0 });
  const endpoint = sdkEndpoint(api.baseUrl, api.endpointId);
  const worker = startWorker(DOUBLE_WORKER, { ...api.workerEnv(), RUNPOD_POD_ID: 'bench-worker', RUNPOD_DEBUG_LEVEL: 'WARN' });
  try {
    await waitUntil(() => api.workersFirstSeen.has('bench-worker'), 20_000);

    // Event latency: events 10 ms apart, each timed from yield to receipt by the SDK's stream.
    const { id } = await endpoint.run({ input: { events: 300, interval_ms: 10, stamp: true } });
    const latencies: number[] = [];
    for await (const chunk of endpoint.stream(id)) {
      const received = now();
      latencies.push(received - (chunk as { output: { at_ms: number } }).output.at_ms);
    }
    results.push(summarize('event: handler yield -> runpod-sdk stream', 'ms', latencies.slice(10), { median: 2, p99: 6 }));

    // Job-to-job gap: a queue of short jobs; the gap is the next job's first yield minus the previous job's last.
    const jobs = await Promise.all(Array.from({ length: 40 }, () => endpoint.run({ input: { events: 2, stamp: true } })));
    const stamps: { first: number; last: number }[] = [];
    for (const job of jobs) {
      const result = await endpoint.statusSync(job.id, 20_000);
      const events = result.output as { at_ms: number }[];
      stamps.push({ first: events[0]!.at_ms, last: events.at(-1)!.at_ms });
    }
    const gaps = stamps.slice(1).map((s, i) => s.first - stamps[i]!.last);
    results.push(summarize('job done -> next queued job first event', 'ms', gaps, { median: 20 }));
  } finally {
    worker.child.kill('SIGTERM');
    await worker.exited;
  }

  // Start-up and shutdown. The runtime alone: the scripted double bundled like the real worker.
  await build({
    entryPoints: ['test/doubles/scripted-worker-double.ts'],
    outfile: '.bench/scripted-worker.mjs',
    bundle: true,
    platform: 'node',
    format: 'esm',
    logLevel: 'warning',
  });
  const timeStartAndStop = async (args: string[], env: Record<string, string>, runs: number) => {
    const startups: number[] = [];
    const exits: number[] = [];
    for (let run = 0; run < runs; run++) {
      const workerId = `bench-start-${startups.length + exits.length}-${run}-${Math.random().toString(36).slice(2, 8)}`;
      const spawned = now();
      const worker = startWorker(args, { ...env, ...api.workerEnv(), RUNPOD_POD_ID: workerId, RUNPOD_DEBUG_LEVEL: 'WARN' });
      await waitUntil(() => api.workersFirstSeen.has(workerId), 60_000);
      startups.push(api.workersFirstSeen.get(workerId)! - spawned);
      const signalled = now();
      worker.child.kill('SIGTERM');
      const code = await worker.exited;
      exits.push(now() - signalled);
      if (code !== 0) throw new Error(`worker exited ${code} on SIGTERM: ${worker.stderr()}`);
    }
    return { startups, exits };
  };
  const runtime = await timeStartAndStop(['.bench/scripted-worker.mjs'], {}, 10);
  results.push(summarize('process start -> first job-take (runtime only)', 'ms', runtime.startups, { median: 500 }));
  results.push(summarize('idle SIGTERM -> exit (runtime only)', 'ms', runtime.exits, { median: 1000 }));
  const full = await timeStartAndStop(['dist/handler.mjs'], await testProfileEnv(), 5);
  results.push(summarize('cold start -> first job-take (dist, test profile, 4 engines)', 'ms', full.startups, { median: 1500 }));
  results.push(summarize('idle SIGTERM -> exit (dist, engines loaded)', 'ms', full.exits, { median: 1000 }));
  await api.close();
  return results;
}
