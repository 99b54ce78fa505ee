/**
 * The local RunPod API's own platform rules: auth, TTL, execution timeout (which stops the job on
 * its worker), retry, purge-queue, request validation.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createScriptedHandlerDouble } from '../doubles/scripted-handler-double.js';
import { API_KEY, expectNothingPostedAfterStop, startHarness, waitFor, type Harness } from '../helpers/harness.js';
import { LocalRunpodApi } from '../../handler/local/runpod-api.js';
import { sdkEndpoint } from '../helpers/sdk.js';

let harness: Harness | null = null;
let api: LocalRunpodApi | null = null;
afterEach(async () => {
  await harness?.close();
  await api?.close();
  harness = null;
  api = null;
});

describe('local RunPod API', () => {
  it('refuses a wrong API key', async () => {
    api = await LocalRunpodApi.start({ port: 0, apiKey: API_KEY });
    const response = await fetch(`${api.baseUrl}/local/run`, {
      method: 'POST',
      headers: { authorization: 'Bearer wrong' },
      body: '{"input":{}}',
    });
    expect(response.status).toBe(401);
  });

  it('refuses /run without input, naming the field', async () => {
    api = await LocalRunpodApi.start({ port: 0 });
    const response = await fetch(`${api.baseUrl}/local/run`, { method: 'POST', body: '{"inptu":{}}' });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toMatch(/input/);
  });

  it('times a queued job out when its TTL passes', async () => {
    api = await LocalRunpodApi.start({ port: 0 });
    const endpoint = sdkEndpoint(api.baseUrl, 'local');
    const { id } = await endpoint.run({ input: {}, policy: { ttl: 100 } });
    await waitFor(() => api!.job(id)?.status === 'TIMED_OUT');
    expect((await endpoint.status(id)).error).toBe('job TTL expired');
  });

  it('an execution timeout stops the job on its worker; retry runs it again', async () => {
    const handler = createScriptedHandlerDouble();
    harness = await startHarness({ handler });
    const { id } = await harness.endpoint.run({ input: { events: 1000, interval_ms: 10 }, policy: { executionTimeout: 150 } });
    await waitFor(() => handler.seen.aborted.includes(id));
    const status = await harness.endpoint.status(id);
    expect(status.status).toBe('TIMED_OUT');
    await expectNothingPostedAfterStop(() => harness!.api.job(id));

    const retry = await fetch(`${harness.api.baseUrl}/local/retry/${id}`, { method: 'POST', headers: { authorization: `Bearer ${API_KEY}` } });
    expect(await retry.json()).toEqual({ id, status: 'IN_QUEUE' });
    await waitFor(() => harness!.api.job(id)?.status === 'TIMED_OUT' && harness!.api.job(id)!.retries === 1);
    expect((await harness.endpoint.health()).jobs.retried).toBe(1);
  });

  it('purge-queue removes queued jobs only: the running one finishes, the purged ones never run', async () => {
    const handler = createScriptedHandlerDouble();
    harness = await startHarness({ handler });
    // The one worker slot is busy, so the next two wait in the queue.
    const running = await harness.endpoint.run({ input: { events: 3, interval_ms: 100 } });
    await waitFor(() => handler.seen.started.includes(running.id));
    const queued = [await harness.endpoint.run({ input: { events: 1 } }), await harness.endpoint.run({ input: { events: 1 } })];
    expect(await harness.endpoint.purgeQueue()).toEqual({ removed: 2, status: 'completed' });
    expect((await harness.endpoint.health()).jobs.inQueue).toBe(0);
    await waitFor(() => harness!.api.job(running.id)?.status === 'COMPLETED');
    // The worker is free and took what came next, but never the purged jobs.
    const next = await harness.endpoint.runSync({ input: { events: 1 } }, 10_000);
    expect(next.status).toBe('COMPLETED');
    expect(handler.seen.started).toEqual([running.id, next.id]);
    expect(queued.every(({ id }) => !handler.seen.started.includes(id))).toBe(true);
  });

  it('cancel of a queued job keeps it from ever running', async () => {
    const handler = createScriptedHandlerDouble();
    harness = await startHarness({ handler });
    const running = await harness.endpoint.run({ input: { events: 3, interval_ms: 100 } });
    await waitFor(() => handler.seen.started.includes(running.id));
    const { id } = await harness.endpoint.run({ input: { events: 1 } });
    expect(await harness.endpoint.cancel(id)).toEqual({ id, status: 'CANCELLED' });
    expect((await harness.endpoint.health()).jobs.inQueue).toBe(0);
    await waitFor(() => harness!.api.job(running.id)?.status === 'COMPLETED');
    const next = await harness.endpoint.runSync({ input: { events: 1 } }, 10_000);
    expect(next.status).toBe('COMPLETED');
    expect(handler.seen.started).toEqual([running.id, next.id]);
    expect(harness.api.job(id)!.status).toBe('CANCELLED');
  });
});
