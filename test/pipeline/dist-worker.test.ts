/**
 * The shipped bundle end to end: `node dist/handler.mjs` with S2S_PROFILE=test (tiny generated
 * models, real Silero VAD, real sherpa-onnx and node-llama-cpp, the VibeVoice protocol double with
 * espeak-ng speech) behind the local RunPod API, driven by the real runpod-sdk client.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeWav } from '../../src/audio/wav.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalRunpodApi } from '../../handler/local/runpod-api.js';
import { resample } from '../../src/audio/resample.js';
import { concatFloat32, pcm16ToFloat32 } from '../../src/audio/pcm.js';
import { loadSileroVad } from '../../src/vad/vad.js';
import { makeUtterance, wavOf } from '../fixtures/speech.js';
import { expectNothingPostedAfterStop, waitFor } from '../helpers/harness.js';
import { sdkEndpoint, type SdkEndpoint } from '../helpers/sdk.js';
import { testProfileEnv } from '../helpers/test-profile.js';
import { RealtimeTestClient } from '../helpers/realtime-client.js';
import { SessionClient } from '../helpers/session-client.js';
import { freePort } from '../helpers/tts-sidecar.js';

type Event = { type: string; turn?: number; [key: string]: unknown };

let api: LocalRunpodApi;
let endpoint: SdkEndpoint;
let worker: ChildProcess;
let workerLog = '';
let question: string;

beforeAll(async () => {
  api = await LocalRunpodApi.start({ port: 0 });
  endpoint = sdkEndpoint(api.baseUrl, api.endpointId);
  const env = await testProfileEnv({ RUNPOD_POD_ID: 'dist-worker', RUNPOD_PING_INTERVAL: '500', S2S_SESSION_PORT: String(await freePort()) });
  worker = spawn(process.execPath, ['dist/handler.mjs'], { env: { ...process.env, ...env, ...api.workerEnv() }, stdio: ['ignore', 'ignore', 'pipe'] });
  worker.stderr!.on('data', (d: Buffer) => (workerLog += d.toString()));
  await waitFor(() => api.workersFirstSeen.has('dist-worker'), 30_000);
  const utterance = await makeUtterance([{ silenceMs: 400 }, { say: 'What is the capital of France?' }, { silenceMs: 700 }]);
  question = wavOf(utterance.samples, 16_000).toString('base64');
}, 60_000);

afterAll(async () => {
  worker?.kill('SIGTERM');
  await new Promise((resolve) => worker?.once('exit', resolve));
  await api?.close();
});

async function streamEvents(id: string): Promise<Event[]> {
  const events: Event[] = [];
  for await (const chunk of endpoint.stream(id)) events.push(chunk.output as Event);
  return events;
}

const METRICS = ['vad_ms', 'endpoint_ms', 'turn_model_ms', 'asr_ms', 'llm_ttft_ms', 'llm_first_clause_ms', 'tts_ttfb_ms', 'first_audio_ms', 'overhead_ms', 'audio_out_ms', 'rtf'];

describe('dist/handler.mjs on the test profile through runpod-sdk', () => {
  it('answers a spoken question: events in contract order, speech out, every metric present and consistent', async () => {
    const { id } = await endpoint.run({ input: { audio: question } });
    const events = await streamEvents(id);
    const types = events.map((e) => e.type);
    // vad, transcript, then text and audio interleaved, then metrics, then done.
    expect(types[0]).toBe('vad');
    expect(types[1]).toBe('transcript');
    expect(types.at(-2)).toBe('metrics');
    expect(types.at(-1)).toBe('done');
    expect(new Set(types.slice(2, -2))).toEqual(new Set(['text', 'audio']));
    expect(events[1]).toEqual({ type: 'transcript', turn: 0, text: 'hello world' });
    const vad = events[0]!;
    expect(vad.start_ms as number).toBeGreaterThan(300);
    expect(vad.end_ms as number).toBeGreaterThan(vad.start_ms as number);

    const audio = events.filter((e) => e.type === 'audio');
    expect(audio.map((e) => e.seq)).toEqual(audio.map((_, i) => i));
    expect(audio.every((e) => e.sample_rate === 24_000 && e.format === 'pcm16')).toBe(true);
    const pcm = audio.map((e) => {
      const bytes = Buffer.from(e.data as string, 'base64');
      return pcm16ToFloat32(new Int16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2));
    });
    const vadEngine = await loadSileroVad();
    const stream = vadEngine.openStream();
    const speech = [...(await stream.push(await resample(concatFloat32([...pcm, new Float32Array(12_000)]), 24_000, 16_000))), ...stream.flush()];
    expect(speech.some((e) => e.type === 'speech_end')).toBe(true);
    await vadEngine.dispose();

    const metrics = events.at(-2)!;
    for (const name of METRICS) expect(typeof metrics[name], name).toBe('number');
    const m = metrics as Record<string, number>;
    // The metrics' own arithmetic, not a speed goal: each part is measured, and the parts cannot add up to
    // more than the whole (0.05 ms for their rounding), on any machine.
    if (metrics['preemptive'] === true) {
      // Started during the endpoint wait: the model time before the turn closed is off the critical path.
      expect(m['overhead_ms']!).toBeGreaterThanOrEqual(0);
      expect(m['overhead_ms']!).toBeLessThanOrEqual(m['first_audio_ms']! - m['endpoint_ms']! + 0.05);
    } else {
      const parts = m['endpoint_ms']! + m['asr_critical_ms']! + m['llm_first_clause_ms']! + m['tts_ttfb_ms']!;
      expect(m['first_audio_ms']!).toBeGreaterThanOrEqual(parts - 0.05);
      expect(m['overhead_ms']!).toBeCloseTo(m['first_audio_ms']! - parts, 1);
      expect(m['overhead_ms']!).toBeGreaterThanOrEqual(0);
    }
    expect(m['first_audio_ms']!).toBeGreaterThanOrEqual(m['endpoint_ms']!);
    // The tiny turn model (its own worker thread, dist/smart-turn-worker.mjs) calls any speech
    // complete: the turn closed after the short silence, on its verdict.
    expect(metrics).toMatchObject({ endpoint_decided_by: 'model', turn_verdict: 'complete' });
    expect(m['turn_model_ms']!).toBeGreaterThan(0);
    expect(m['endpoint_ms']!).toBeGreaterThanOrEqual(200);
    expect(m['llm_first_clause_ms']!).toBeGreaterThanOrEqual(m['llm_ttft_ms']!);
    expect(m['audio_out_ms']!).toBeCloseTo((pcm.reduce((n, p) => n + p.length, 0) / 24_000) * 1000, 0);

    const done = events.at(-1)!;
    expect(done).toMatchObject({ type: 'done', turns: 1, llm_tokens_out: 17 });
    expect(done['audio_in_s'] as number).toBeGreaterThan(2);
    expect(done['audio_out_s'] as number).toBeCloseTo(m['audio_out_ms']! / 1000, 2);
    // return_aggregate_stream: the same list is the job's output.
    expect((await endpoint.status(id)).output).toEqual(events);
  });

  it('a three-turn scripted conversation keeps one conversation: later turns evaluate only their new tokens', async () => {
    const result = await endpoint.runSync({ input: { turns: [{ audio: question }, { audio: question }, { audio: question }] } }, 60_000);
    expect(result.status).toBe('COMPLETED');
    const events = result.output as Event[];
    const metrics = events.filter((e) => e.type === 'metrics') as unknown as Record<string, number>[];
    expect(metrics.map((m) => m['turn'])).toEqual([0, 1, 2]);
    // The first turn reads the system prompt; later turns add only their own message to the same KV cache.
    // Counted with the tokens of answers started early and thrown away (a pause inside the question):
    // the played answer then reuses their prompt from the cache, so its own input count can be 0.
    const evaluated = metrics.map((m) => m['llm_tokens_in']! + m['llm_tokens_wasted']!);
    expect(evaluated[1]!).toBeLessThan(evaluated[0]! / 3);
    expect(evaluated[2]!).toBeLessThan(evaluated[0]! / 3);
    expect(events.at(-1)).toMatchObject({ type: 'done', turns: 3 });
  }, 60_000);

  it('audio without speech gives an empty transcript and no answer, not an error', async () => {
    const silence = wavOf(new Float32Array(16_000 * 2), 16_000).toString('base64');
    const result = await endpoint.runSync({ input: { audio: silence } }, 30_000);
    expect(result.status).toBe('COMPLETED');
    const types = (result.output as Event[]).map((e) => e.type);
    expect(types).toEqual(['transcript', 'metrics', 'done']);
    expect((result.output as Event[])[0]).toEqual({ type: 'transcript', turn: 0, text: '' });
  });

  it.each([
    ['invalid base64', { audio: '!!!not base64!!!' }, /^audio: is not valid base64$/],
    ['non-audio bytes', { audio: Buffer.from('just some text, definitely not a wav').toString('base64') }, /^audio: audio is not a WAV file/],
    ['a WAV over the size limit', { audio: wavOf(new Float32Array(16_000 * 130), 16_000).toString('base64') }, /^audio: audio is .* over the limit/],
    ['wrong field types', { audio: 12, temperature: 'warm' }, /audio: .*expected string.*temperature: /],
    ['empty turns', { turns: [] }, /turns: must hold at least one turn/],
    ['a bad second turn', { turns: [{ audio: 'QUJD' }, { audio: '%%%' }] }, /^turns\.0\.audio: audio is not a WAV file/],
    ['an unknown voice', { audio: 'AAAA', voice: 'en-Nobody' }, /^voice: unknown voice "en-Nobody"; valid voices: en-Carter_man/],
  ])('bad input (%s) fails the job with a clear message naming the field, and the next job is served', async (_name, input, message) => {
    const failed = await endpoint.runSync({ input }, 30_000);
    expect(failed.status).toBe('FAILED');
    expect(failed.error).toMatch(message);
    const next = await endpoint.runSync({ input: { audio: wavOf(new Float32Array(8000), 16_000).toString('base64') } }, 30_000);
    expect(next.status).toBe('COMPLETED');
  }, 60_000);

  it('a private audio_url is refused', async () => {
    const failed = await endpoint.runSync({ input: { audio_url: 'http://127.0.0.1:9/secret.wav' } }, 30_000);
    expect(failed.error).toMatch(/audio_url: 127\.0\.0\.1 resolves to 127\.0\.0\.1, an internal address/);
  });

  it('the batch runner answers a folder of three WAVs and writes replies, texts and a summary', async () => {
    const dir = await mkdtemp(join(tmpdir(), 's2s-batch-'));
    await mkdir(join(dir, 'in'));
    for (const [i, say] of ['How are you today?', 'What is the weather like?', 'Tell me a joke please.'].entries()) {
      const utterance = await makeUtterance([{ silenceMs: 300 }, { say }, { silenceMs: 600 }]);
      await writeFile(join(dir, 'in', `q${i + 1}.wav`), wavOf(utterance.samples, 16_000));
    }
    const run = spawn(process.execPath, ['dist/s2s-batch.mjs', '--local', '--base-url', api.baseUrl, '--out', join(dir, 'out'), join(dir, 'in')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    run.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    expect(await new Promise((resolve) => run.once('exit', resolve))).toBe(0);
    for (const name of ['q1', 'q2', 'q3']) {
      const wav = decodeWav(await readFile(join(dir, 'out', name, 'turn-0.wav')));
      expect(wav.sampleRate).toBe(24_000);
      expect(wav.channels[0]!.length).toBeGreaterThan(24_000);
      expect(await readFile(join(dir, 'out', name, 'turn-0.transcript.txt'), 'utf8')).toBe('hello world\n');
      expect(await readFile(join(dir, 'out', name, 'turn-0.response.txt'), 'utf8')).toContain('tiny model');
    }
    const summary = JSON.parse(await readFile(join(dir, 'out', 'summary.json'), 'utf8')) as { turns: unknown[]; percentiles: Record<string, { p50: number; p90: number }> };
    expect(summary.turns).toHaveLength(3);
    expect(summary.percentiles['first_audio_ms']!.p50).toBeGreaterThan(250);
    expect(summary.percentiles['first_audio_ms']!.p90).toBeGreaterThanOrEqual(summary.percentiles['first_audio_ms']!.p50);
    expect(stdout).toMatch(/first_audio_ms\s+\d+\s+\d+/);
  }, 60_000);

  it('a session job publishes its URL and token, serves a live conversation, and ends with a summary', async () => {
    const { id } = await endpoint.run({ input: { mode: 'session', voice: 'en-Emma_woman' } });
    const stream = endpoint.stream(id)[Symbol.asyncIterator]();
    const invitation = (await stream.next()).value!.output as Event;
    expect(invitation).toMatchObject({ type: 'session', sample_rate_in: 16_000, sample_rate_out: 24_000, format: 'pcm16' });
    // Also published as a progress update, for clients that poll /status.
    await waitFor(() => api.job(id)?.output !== undefined);
    expect((await endpoint.status(id)).output).toEqual(invitation);
    const client = await SessionClient.connect(`${invitation['url'] as string}?token=${invitation['token'] as string}`);
    expect(await client.waitFor((e) => e.type === 'ready')).toMatchObject({ voice: 'en-Emma_woman' });
    const utterance = await makeUtterance([{ silenceMs: 300 }, { say: 'What is the capital of France?' }, { silenceMs: 600 }]);
    await client.sendAudio(utterance.samples);
    await client.waitFor((e) => e.type === 'metrics');
    client.send({ type: 'end' });
    const rest: Event[] = [];
    for (let next = await stream.next(); !next.done; next = await stream.next()) rest.push(next.value.output as Event);
    expect(rest).toEqual([expect.objectContaining({ type: 'done', reason: 'client_end', turns: 1 })]);
    expect((await endpoint.status(id)).status).toBe('COMPLETED');
    // The token was for one connection only.
    await expect(SessionClient.connect(`${invitation['url'] as string}?token=${invitation['token'] as string}`)).rejects.toThrow(/401/);
  }, 60_000);

  it("a session job's realtime_url serves the OpenAI Realtime API with the job's token; done carries the bill", async () => {
    const { id } = await endpoint.run({ input: { mode: 'session' } });
    const stream = endpoint.stream(id)[Symbol.asyncIterator]();
    const invitation = (await stream.next()).value!.output as Event;
    expect(invitation['realtime_url']).toBe((invitation['url'] as string).replace(/\/ws$/, '/v1'));
    const client = await RealtimeTestClient.connect(`${invitation['realtime_url'] as string}/realtime?model=gpt-realtime`, { token: invitation['token'] as string });
    await client.waitFor('session.created');
    client.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Hello there.' }] } });
    client.send({ type: 'response.create' });
    const done = await client.waitFor('response.done', 30_000);
    expect(done['response']).toMatchObject({ status: 'completed' });
    expect(client.of('response.output_audio.delta').length).toBeGreaterThan(0);
    client.ws.close();
    const rest: Event[] = [];
    for (let next = await stream.next(); !next.done; next = await stream.next()) rest.push(next.value.output as Event);
    expect(rest).toEqual([expect.objectContaining({ type: 'done', reason: 'client_left', turns: 1 })]);
    expect((rest[0]!['llm_tokens_out'] as number) > 0 && (rest[0]!['audio_out_s'] as number) > 0).toBe(true);
  }, 60_000);

  it('cancelling a session job ends its live session', async () => {
    const { id } = await endpoint.run({ input: { mode: 'session' } });
    const stream = endpoint.stream(id)[Symbol.asyncIterator]();
    const invitation = (await stream.next()).value!.output as Event;
    const client = await SessionClient.connect(`${invitation['url'] as string}?token=${invitation['token'] as string}`);
    await client.waitFor((e) => e.type === 'ready');
    await endpoint.cancel(id);
    expect(await client.waitFor((e) => e.type === 'session_end')).toMatchObject({ reason: 'stopped' });
    expect((await client.closed).code).toBe(1000);
  }, 60_000);

  it('cancel mid-response: nothing more is posted and the worker serves the next job', async () => {
    const { id } = await endpoint.run({ input: { audio: question } });
    for await (const chunk of endpoint.stream(id)) {
      if ((chunk.output as Event).type === 'audio') break;
    }
    await endpoint.cancel(id);
    await expectNothingPostedAfterStop(() => api.job(id));
    const next = await endpoint.runSync({ input: { audio: question } }, 30_000);
    expect(next.status).toBe('COMPLETED');
    expect(workerLog).toContain('job-stop received');
  }, 60_000);
});
