/**
 * The worker as a real process: SIGTERM drains (the job in flight finishes and is posted, then the
 * process exits 0), an idle worker exits at once, local one-shot mode exits 0/1, bad config exits 2.
 */
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalRunpodApi } from '../../handler/local/runpod-api.js';
import { waitFor } from '../helpers/harness.js';
import { sdkEndpoint } from '../helpers/sdk.js';
import { testProfileEnv } from '../helpers/test-profile.js';
import { freePort } from '../helpers/tts-sidecar.js';
import { SessionClient } from '../helpers/session-client.js';

let api: LocalRunpodApi | null = null;
afterEach(async () => {
  await api?.close();
  api = null;
});

function spawnNode(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? -1)));
  return { child, exited, output: () => ({ stdout, stderr }) };
}

const DOUBLE_WORKER = ['--import', 'tsx', 'test/doubles/scripted-worker-double.ts'];

describe('worker process', () => {
  it('SIGTERM while a job runs: the job finishes and is posted, then the process exits 0', async () => {
    api = await LocalRunpodApi.start({ port: 0 });
    const endpoint = sdkEndpoint(api.baseUrl, api.endpointId);
    const worker = spawnNode(DOUBLE_WORKER, { ...api.workerEnv(), RUNPOD_POD_ID: 'w-term' });
    const { id } = await endpoint.run({ input: { events: 10, interval_ms: 50 } });
    await waitFor(() => (api!.job(id)?.stream.length ?? 0) >= 1, 15_000);
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    const job = api.job(id)!;
    expect(job.status).toBe('COMPLETED');
    expect(job.stream).toHaveLength(10);
    expect(worker.output().stderr).toContain('draining');
  });

  it('SIGTERM during a live session: the client is warned, the session ends after the grace, the job completes, exit 0', async () => {
    api = await LocalRunpodApi.start({ port: 0 });
    const endpoint = sdkEndpoint(api.baseUrl, api.endpointId);
    const env = await testProfileEnv({ S2S_SESSION_PORT: String(await freePort()), S2S_SESSION_SHUTDOWN_GRACE_MS: '500' });
    const worker = spawnNode(['dist/handler.mjs'], { ...env, ...api.workerEnv(), RUNPOD_POD_ID: 'w-session-term' });
    const { id } = await endpoint.run({ input: { mode: 'session' } });
    await waitFor(() => api!.job(id)?.stream.length === 1, 30_000);
    const invitation = api.job(id)!.stream[0] as { url: string; token: string };
    const client = await SessionClient.connect(`${invitation.url}?token=${invitation.token}`);
    await client.waitFor((e) => e.type === 'ready');
    worker.child.kill('SIGTERM');
    expect(await client.waitFor((e) => e.type === 'error')).toMatchObject({ code: 'WORKER_SHUTTING_DOWN' });
    expect(await client.waitFor((e) => e.type === 'session_end')).toMatchObject({ reason: 'stopped' });
    expect(await worker.exited).toBe(0);
    expect(api.job(id)!.status).toBe('COMPLETED');
    expect(api.job(id)!.stream.at(-1)).toMatchObject({ type: 'done', reason: 'stopped' });
  }, 60_000);

  // The poll is held for 10 minutes: waiting it out would run past the test's timeout. The time
  // SIGTERM takes is a benchmark ("idle SIGTERM -> exit").
  it('an idle worker exits 0 on SIGTERM without waiting out its long poll', async () => {
    api = await LocalRunpodApi.start({ port: 0, workerPollHoldMs: 600_000 });
    const worker = spawnNode(DOUBLE_WORKER, { ...api.workerEnv(), RUNPOD_POD_ID: 'w-idle' });
    await waitFor(() => worker.output().stderr.includes('worker started'), 15_000);
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
  });

  it('local mode runs --test_input once with the bundled worker and exits 1 on a failed job', async () => {
    const run = spawnNode(['dist/handler.mjs', '--test_input', '{"input":{"mode":"karaoke"}}'], await testProfileEnv());
    expect(await run.exited).toBe(1);
    expect(JSON.parse(run.output().stdout)).toEqual({ error: 'invalid input: mode: must be "turn" or "session", got "karaoke"' });
  });

  it('local mode runs test_input.json (a real spoken question) once and exits 0 with the events', async () => {
    const run = spawnNode(['dist/handler.mjs'], await testProfileEnv());
    expect(await run.exited).toBe(0);
    const { output } = JSON.parse(run.output().stdout) as { output: { type: string }[] };
    expect(output[0]!.type).toBe('vad');
    expect(output.filter((e) => e.type === 'audio').length).toBeGreaterThan(5);
    expect(output.at(-1)!.type).toBe('done');
  }, 60_000);

  it('on a load-balancing endpoint /ping answers 204 while loading, 200 when ready, /ws serves sessions, SIGTERM exits 0', async () => {
    const port = await freePort();
    const token = 'lb-session-token-0123456789';
    const worker = spawnNode(['dist/handler.mjs'], await testProfileEnv({ PORT: String(port), PORT_HEALTH: String(port), S2S_SESSION_TOKEN: token }));
    const statuses: number[] = [];
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && statuses.at(-1) !== 200) {
      const status = await fetch(`http://127.0.0.1:${port}/ping`).then((r) => r.status, () => 0);
      if (status && statuses.at(-1) !== status) statuses.push(status);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(statuses).toEqual([204, 200]);
    // Live sessions on /ws of the same server, for clients with the endpoint's session token.
    await expect(SessionClient.connect(`ws://127.0.0.1:${port}/ws?token=wrong`)).rejects.toThrow(/401/);
    const client = await SessionClient.connect(`ws://127.0.0.1:${port}/ws`);
    client.send({ type: 'auth', token });
    await client.waitFor((e) => e.type === 'ready');
    client.send({ type: 'text', text: 'Hello there.' });
    await client.waitFor((e) => e.type === 'metrics');
    expect(client.audioSamples()).toBeGreaterThan(24_000);
    client.ws.close();
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
  }, 60_000);

  it('a missing model stops start-up at once, naming the file and the command that fetches it', async () => {
    const run = spawnNode(['dist/handler.mjs'], { S2S_PROFILE: 'production', S2S_MODELS_DIR: '/nonexistent/models', S2S_TTS_COMMAND: '["true"]' });
    expect(await run.exited).toBe(1);
    // Production defaults to CUDA, so to the fp32 Whisper export.
    expect(run.output().stderr).toMatch(/ASR encoder file is missing: \/nonexistent\/models\/asr\/sherpa-onnx-whisper-small\.en\/small\.en-encoder\.onnx \(fetch them with: npm run models\)/);
    expect(run.output().stderr).toMatch(/devices llm_tts=cuda asr=cuda asr_precision=fp32 why=S2S_DEVICE=cuda/);
    expect(run.output().stderr).toMatch(/LLM model file is missing: .*qwen2\.5-1\.5b-instruct-q4_k_m\.gguf/);
  });

  it('local mode runs --test_input once and exits 0 with the result', async () => {
    const run = spawnNode([...DOUBLE_WORKER, '--test_input', '{"input":{"events":2}}'], {});
    expect(await run.exited).toBe(0);
    expect(JSON.parse(run.output().stdout)).toEqual({ output: [{ type: 'tick', n: 0 }, { type: 'tick', n: 1 }] });
  });

  it('a bad environment stops the worker at start with a message naming the variable', async () => {
    const run = spawnNode(['dist/handler.mjs'], { RUNPOD_WEBHOOK_GET_JOB: 'http://127.0.0.1:1/job-take/x', RUNPOD_PING_INTERVAL: 'often' });
    expect(await run.exited).toBe(2);
    expect(run.output().stderr).toMatch(/RUNPOD_PING_INTERVAL/);
  });
});
