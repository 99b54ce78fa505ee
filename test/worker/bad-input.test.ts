/**
 * Bad jobs never crash the worker: each becomes a FAILED job with a clear message (where the
 * job's id can be known), and the next job is served normally.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { S2sHandler } from '../../handler/s2s-handler.js';
import { createScriptedHandlerDouble } from '../doubles/scripted-handler-double.js';
import { startHarness, waitFor, type Harness } from '../helpers/harness.js';
import { testProfileHandler } from '../helpers/test-profile.js';

let harness: Harness | null = null;
let s2s: S2sHandler;
beforeAll(async () => {
  s2s = await testProfileHandler();
});
afterAll(async () => {
  await s2s?.dispose();
});
afterEach(async () => {
  await harness?.close();
  harness = null;
});

function donePostFor(h: Harness, jobId: string) {
  return h.proxy!.requests.find((r) => r.method === 'POST' && r.path.endsWith(`/job-done/worker-1/${jobId}`));
}

describe('bad jobs', () => {
  it('a job without input is failed with a clear message and the worker keeps serving', async () => {
    harness = await startHarness({ handler: createScriptedHandlerDouble(), proxy: true });
    harness.proxy!.addRule({ method: 'GET', path: /\/job-take\//, times: 1, status: 200, body: '{"id":"no-input-1"}' });
    const post = await waitFor(() => donePostFor(harness!, 'no-input-1'));
    expect(JSON.parse(post.body)).toEqual({ error: 'the job has no "input": send {"input": {...}}' });
    const next = await harness.endpoint.runSync({ input: { events: 1 } }, 10_000);
    expect(next.status).toBe('COMPLETED');
  });

  it('malformed JSON from job-take fails the job when its id can be read, and the worker keeps serving', async () => {
    harness = await startHarness({ handler: createScriptedHandlerDouble(), proxy: true });
    harness.proxy!.addRule({ method: 'GET', path: /\/job-take\//, times: 1, status: 200, body: '{"id":"broken-1","input":{"a":' });
    harness.proxy!.addRule({ method: 'GET', path: /\/job-take\//, times: 1, status: 200, body: 'not json at all' });
    const post = await waitFor(() => donePostFor(harness!, 'broken-1'));
    expect(JSON.parse(post.body).error).toMatch(/malformed JSON/);
    const next = await harness.endpoint.runSync({ input: { events: 1 } }, 10_000);
    expect(next.status).toBe('COMPLETED');
    expect(harness.logs.some((line) => line.includes('job-take returned malformed JSON'))).toBe(true);
  });

  it('an unknown mode fails the job naming the field, through the real S2S handler', async () => {
    harness = await startHarness({ handler: s2s });
    const failed = await harness.endpoint.runSync({ input: { mode: 'karaoke' } }, 10_000);
    expect(failed.status).toBe('FAILED');
    expect(failed.error).toBe('invalid input: mode: must be "turn" or "session", got "karaoke"');
    const wrongTypes = await harness.endpoint.runSync({ input: { audio: 42, temperature: 'hot', colour: 'red' } }, 10_000);
    expect(wrongTypes.status).toBe('FAILED');
    expect(wrongTypes.error).toMatch(/audio: .*expected string/);
    expect(wrongTypes.error).toMatch(/temperature: /);
    expect(wrongTypes.error).toMatch(/colour/);
  });

  it('an input that is not an object is refused with a clear message', async () => {
    harness = await startHarness({ handler: s2s });
    const failed = await harness.endpoint.runSync({ input: 'hello' }, 10_000);
    expect(failed.error).toBe('input must be a JSON object, got string');
  });

  it('logs are JSON lines carrying the job id as requestId', async () => {
    harness = await startHarness({ handler: createScriptedHandlerDouble() });
    const done = await harness.endpoint.runSync({ input: { events: 1 } }, 10_000);
    const lines = harness.logs.map((line) => JSON.parse(line) as { requestId: string | null; message: string; level: string });
    expect(lines.find((l) => l.message === 'job started')).toMatchObject({ requestId: done.id, level: 'INFO' });
    expect(lines.find((l) => l.message === 'worker started')).toMatchObject({ requestId: null });
  });
});
