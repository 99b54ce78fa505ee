/**
 * The RunPod queue worker driven end to end by the real `runpod-sdk` client through the local
 * RunPod API: every behaviour of PROTOCOLS.md section 1 that a client can observe.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createScriptedHandlerDouble } from '../doubles/scripted-handler-double.js';
import { expectNothingPostedAfterStop, startHarness, waitFor, type Harness } from '../helpers/harness.js';
import { collect } from '../helpers/collect.js';
import { parseTakenJobs } from '../../handler/runtime/worker.js';
import { Logger } from '../../src/log/logger.js';

let harness: Harness | null = null;
afterEach(async () => {
  await harness?.close();
  harness = null;
});

describe('queue worker through runpod-sdk', () => {
  it('streams every yielded event in order with run + stream, and aggregates the result', async () => {
    harness = await startHarness({ handler: createScriptedHandlerDouble() });
    const { id } = await harness.endpoint.run({ input: { events: 5, interval_ms: 5 } });
    const chunks = await collect(harness.endpoint.stream(id));
    expect(chunks).toEqual([0, 1, 2, 3, 4].map((n) => ({ output: { type: 'tick', n } })));
    const status = await harness.endpoint.status(id);
    expect(status.status).toBe('COMPLETED');
    expect(status.output).toEqual([0, 1, 2, 3, 4].map((n) => ({ type: 'tick', n })));
  });

  it('runSync returns the finished job', async () => {
    harness = await startHarness({ handler: createScriptedHandlerDouble() });
    const result = await harness.endpoint.runSync({ input: { events: 2 } }, 10_000);
    expect(result.status).toBe('COMPLETED');
    expect(result.output).toEqual([
      { type: 'tick', n: 0 },
      { type: 'tick', n: 1 },
    ]);
  });

  it('a progress update is visible as the output of /status while the job runs', async () => {
    const handler = createScriptedHandlerDouble();
    harness = await startHarness({ handler });
    const { id } = await harness.endpoint.run({ input: { progress: { stage: 'loading' }, events: 1, hang_after: 0 } });
    await waitFor(() => harness!.api.job(id)?.output !== undefined);
    const seen = await harness.endpoint.status(id);
    expect(seen.status).toBe('IN_PROGRESS');
    expect(seen.output).toEqual({ stage: 'loading' });
    await harness.endpoint.cancel(id);
  });

  it('cancel mid-stream fires the handler signal and nothing more is posted for the job', async () => {
    const handler = createScriptedHandlerDouble();
    harness = await startHarness({ handler });
    const { id } = await harness.endpoint.run({ input: { events: 1000, interval_ms: 10 } });
    const received: unknown[] = [];
    for await (const chunk of harness.endpoint.stream(id)) {
      received.push(chunk);
      if (received.length === 3) break;
    }
    const cancelled = await harness.endpoint.cancel(id);
    expect(cancelled.status).toBe('CANCELLED');
    await waitFor(() => handler.seen.aborted.includes(id));
    await expectNothingPostedAfterStop(() => harness!.api.job(id));
    expect(harness.api.job(id)!.status).toBe('CANCELLED');
    expect(handler.seen.finished).not.toContain(id);
    // The worker keeps serving.
    const next = await harness.endpoint.runSync({ input: { events: 1 } }, 10_000);
    expect(next.status).toBe('COMPLETED');
  });

  it('a handler that ignores its signal is still stopped at once on cancel', async () => {
    const handler = createScriptedHandlerDouble();
    harness = await startHarness({ handler });
    const { id } = await harness.endpoint.run({ input: { events: 5, hang_after: 1 } });
    await waitFor(() => harness!.api.job(id)?.stream.length === 1);
    await harness.endpoint.cancel(id);
    const next = await harness.endpoint.runSync({ input: { events: 1 } }, 10_000);
    expect(next.status).toBe('COMPLETED');
    await expectNothingPostedAfterStop(() => harness!.api.job(id));
  });

  it('leaves no listener behind on its shutdown signal, job after job', async () => {
    const handler = createScriptedHandlerDouble();
    harness = await startHarness({ handler });
    for (let n = 0; n < 15; n++) expect((await harness.endpoint.runSync({ input: { events: 1 } }, 10_000)).status).toBe('COMPLETED');
    // Each wait for a free slot used to leave one listener on the drain signal (MaxListenersExceededWarning after 10 jobs).
    expect(handler.seen.shutdownListeners).toEqual(Array(15).fill(handler.seen.shutdownListeners[0]));
  });

  it('a drain during a job-take runs the job that take hands out, and posts its result', async () => {
    const handler = createScriptedHandlerDouble();
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    harness = await startHarness({ handler, proxyHolds: [{ method: 'GET', path: /\/job-take\//, times: 1, until: released }] });
    const { id } = await harness.endpoint.run({ input: { events: 2 } });
    // The platform has handed the job out in the take's answer, which is still on its way.
    await waitFor(() => harness!.api.job(id)?.status === 'IN_PROGRESS');
    harness.worker.drain(); // SIGTERM
    release();
    await harness.workerDone;
    expect(handler.seen.finished).toEqual([id]);
    expect(harness.api.job(id)).toMatchObject({ status: 'COMPLETED', output: [{ type: 'tick', n: 0 }, { type: 'tick', n: 1 }] });
  });

  it('health reports jobs and workers', async () => {
    harness = await startHarness({ handler: createScriptedHandlerDouble() });
    await harness.endpoint.runSync({ input: { events: 1 } }, 10_000);
    await harness.endpoint.runSync({ input: { fail_after: 0 } }, 10_000);
    const health = await harness.endpoint.health();
    expect(health.jobs).toMatchObject({ completed: 1, failed: 1, inProgress: 0, inQueue: 0 });
    expect(health.workers.idle + health.workers.running).toBe(1);
  });

  it('runs two jobs at once with concurrency 2', async () => {
    const handler = createScriptedHandlerDouble();
    harness = await startHarness({ handler: { ...handler, concurrency: 2 } });
    const a = await harness.endpoint.run({ input: { events: 10, interval_ms: 30 } });
    const b = await harness.endpoint.run({ input: { events: 10, interval_ms: 30 } });
    await Promise.all([collect(harness.endpoint.stream(a.id)), collect(harness.endpoint.stream(b.id))]);
    const ya = handler.seen.yielded.get(a.id)!;
    const yb = handler.seen.yielded.get(b.id)!;
    // Overlap: each job yielded its first event before the other yielded its last.
    expect(ya[0]!.at).toBeLessThan(yb.at(-1)!.at);
    expect(yb[0]!.at).toBeLessThan(ya.at(-1)!.at);
  });

  it('with concurrency 1 a second job waits for the first', async () => {
    const handler = createScriptedHandlerDouble();
    harness = await startHarness({ handler });
    const a = await harness.endpoint.run({ input: { events: 5, interval_ms: 20 } });
    const b = await harness.endpoint.run({ input: { events: 1 } });
    await collect(harness.endpoint.stream(b.id));
    expect(handler.seen.yielded.get(b.id)![0]!.at).toBeGreaterThan(handler.seen.yielded.get(a.id)!.at(-1)!.at);
  });

  it('a handler that throws fails the job with a clear string error and the worker keeps serving', async () => {
    harness = await startHarness({ handler: createScriptedHandlerDouble() });
    const failed = await harness.endpoint.runSync({ input: { events: 3, fail_after: 1, message: 'microphone on fire' } }, 10_000);
    expect(failed.status).toBe('FAILED');
    expect(failed.error).toBe('microphone on fire');
    // The event yielded before the error still reached the stream.
    expect(harness.api.job(failed.id)!.stream).toEqual([{ type: 'tick', n: 0 }]);
    const next = await harness.endpoint.runSync({ input: { events: 1 } }, 10_000);
    expect(next.status).toBe('COMPLETED');
  });

  it('job-done failing twice with 500 is retried and the result arrives once', async () => {
    harness = await startHarness({ handler: createScriptedHandlerDouble(), proxy: true });
    harness.proxy!.addRule({ method: 'POST', path: /\/job-done\//, times: 2, status: 500, body: '{"error":"boom"}' });
    const result = await harness.endpoint.runSync({ input: { events: 2 } }, 20_000);
    expect(result.status).toBe('COMPLETED');
    expect(result.output).toEqual([
      { type: 'tick', n: 0 },
      { type: 'tick', n: 1 },
    ]);
    const donePosts = harness.proxy!.requests.filter((r) => r.path.includes('/job-done/'));
    expect(donePosts.map((r) => r.answered)).toEqual(['canned', 'canned', 'forwarded']);
    expect(donePosts[2]!.query).toContain('isStream=true');
    expect(harness.api.job(result.id)!.latePosts).toEqual([]);
  });

  it('a job-stop while job-done is being retried ends the retries', async () => {
    harness = await startHarness({ handler: createScriptedHandlerDouble(), proxy: true });
    // Every attempt fails: left alone, the worker would retry for about 13 s.
    harness.proxy!.addRule({ method: 'POST', path: /\/job-done\//, times: 8, status: 500, body: '{"error":"boom"}' });
    const { id } = await harness.endpoint.run({ input: { events: 1 } });
    await waitFor(() => harness!.proxy!.requests.some((r) => r.path.includes(`/job-done/worker-1/${id}`)));
    await harness.endpoint.cancel(id);
    await waitFor(() => harness!.logs.some((line) => line.includes('job stopped by the platform during its final post')));
    const proxy = harness.proxy!;
    const posts = () => proxy.requests.filter((r) => r.path.includes(`/job-done/worker-1/${id}`)).length;
    const atStop = posts();
    await harness.close(); // drains: returns once the job's post has given up
    harness = null;
    expect(posts()).toBe(atStop);
    expect(atStop).toBeLessThan(8);
  });

  it('a stream post failing with 503 is retried without losing or reordering events', async () => {
    harness = await startHarness({ handler: createScriptedHandlerDouble(), proxy: true });
    harness.proxy!.addRule({ method: 'POST', path: /\/job-stream\//, times: 1, status: 503, body: '' });
    const { id } = await harness.endpoint.run({ input: { events: 4 } });
    const chunks = await collect(harness.endpoint.stream(id));
    expect(chunks).toEqual([0, 1, 2, 3].map((n) => ({ output: { type: 'tick', n } })));
  });

  it('the heartbeat carries the ids of the jobs in progress', async () => {
    harness = await startHarness({ handler: createScriptedHandlerDouble() });
    const { id } = await harness.endpoint.run({ input: { events: 100, interval_ms: 20 } });
    await waitFor(() => harness!.api.heartbeats.get('worker-1')?.jobIds.includes(id));
    await harness.endpoint.cancel(id);
    await waitFor(() => harness!.api.heartbeats.get('worker-1')?.jobIds.length === 0);
  });

  it('uses job-take-batch when more than one job is wanted', async () => {
    const handler = createScriptedHandlerDouble();
    harness = await startHarness({ handler: { ...handler, concurrency: 3 }, env: { S2S_JOB_TAKE_BATCH: '3' }, proxy: true });
    const ids = await Promise.all([1, 2, 3].map(() => harness!.endpoint.run({ input: { events: 1 } })));
    for (const { id } of ids) await collect(harness.endpoint.stream(id));
    const takes = harness.proxy!.requests.filter((r) => r.path.includes('/job-take'));
    // The first poll has three free slots, so it asks for three jobs at once.
    expect(takes[0]!.path).toContain('/job-take-batch/worker-1');
    expect(takes[0]!.query).toContain('batch_size=3');
    expect(handler.seen.finished).toHaveLength(3);
  });
});

describe('job-take answers', () => {
  const quiet = new Logger({ level: 'ERROR', jsonLines: true, write: () => undefined });

  it('a batch answer gives every job, and a job to fail for each bad one that has an id', () => {
    const body = JSON.stringify([
      { id: 'a', input: { events: 1 } },
      { id: 'b', input: null },
      { input: { events: 1 } },
      { id: 'c', input: { events: 2 } },
    ]);
    expect(parseTakenJobs(body, true, quiet)).toEqual([
      { id: 'a', input: { events: 1 }, problem: null },
      { id: 'b', input: undefined, problem: 'the job has no "input": send {"input": {...}}' },
      { id: 'c', input: { events: 2 }, problem: null },
    ]);
    // A single take's answer is one job, even when asked as a batch of one.
    expect(parseTakenJobs(JSON.stringify({ id: 'd', input: {} }), true, quiet)).toEqual([{ id: 'd', input: {}, problem: null }]);
  });

  it('a batch of three jobs taken in one answer all run and are posted', async () => {
    const handler = createScriptedHandlerDouble();
    let release!: () => void;
    const queued = new Promise<void>((resolve) => (release = resolve));
    // The worker's first batch take is held back until three jobs wait, so one answer carries them all.
    harness = await startHarness({ handler: { ...handler, concurrency: 3 }, env: { S2S_JOB_TAKE_BATCH: '3' }, proxyHolds: [{ method: 'GET', path: /\/job-take-batch\//, times: 1, until: queued, stage: 'request' }] });
    const ids: string[] = [];
    for (let n = 0; n < 3; n++) ids.push((await harness.endpoint.run({ input: { events: 1 } })).id);
    release();
    for (const id of ids) await waitFor(() => harness!.api.job(id)?.status === 'COMPLETED');
    expect(new Set(handler.seen.finished)).toEqual(new Set(ids));
    const first = harness.proxy!.requests.find((r) => r.path.includes('/job-take-batch/'))!;
    expect((JSON.parse(first.answer!) as { id: string }[]).map((job) => job.id).sort()).toEqual([...ids].sort());
  });
});
