/**
 * The TTS sidecar manager and VibeVoice client against a server that speaks VibeVoice's protocol
 * (test/doubles/vibevoice-server-double.ts) with real espeak-ng speech.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { resample } from '../../src/audio/resample.js';
import { concatFloat32, pcm16ToFloat32 } from '../../src/audio/pcm.js';
import { InvalidInputError } from '../../src/errors.js';
import { Logger } from '../../src/log/logger.js';
import { speakInOrder } from '../../src/tts/speaker.js';
import { TtsSidecar } from '../../src/tts/sidecar.js';
import { splitForRequests, VibeVoiceClient } from '../../src/tts/vibevoice-client.js';
import { loadSileroVad } from '../../src/vad/vad.js';
import { doubleSidecarConfig, startDoubleSidecar } from '../helpers/tts-sidecar.js';
import { collect } from '../helpers/collect.js';
import { waitFor } from '../helpers/harness.js';

const lines: string[] = [];
const log = new Logger({ level: 'DEBUG', jsonLines: true, write: (line) => lines.push(line) });
let sidecar: TtsSidecar;
let tts: VibeVoiceClient;

beforeAll(async () => {
  sidecar = await startDoubleSidecar(log, ['--frame-ms', '15']);
  tts = new VibeVoiceClient(sidecar, {}, log);
});
afterAll(async () => {
  await tts?.dispose();
});

const live = () => new AbortController().signal;
/** Whether something accepts connections on the port. */
const portAnswers = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
/** The texts the server was asked to speak, from its output lines (which the sidecar manager logs). */
const requestsReceived = () =>
  lines.flatMap((line) => {
    const entry = JSON.parse(line) as { message: string; line?: string };
    const match = entry.message === 'TTS server output' ? /^request_received (.*)$/.exec(entry.line ?? '') : null;
    return match ? [JSON.parse(match[1]!) as string] : [];
  });

describe('VibeVoice client against the protocol double', () => {
  it('reads the voices from /config', () => {
    expect(tts.voices).toContain('en-Carter_man');
    expect(tts.defaultVoice).toBe('en-Carter_man');
  });

  it('streams 24 kHz PCM16 chunks of 3200 samples, reports time to first chunk, and the audio is speech', async () => {
    const synthesis = tts.synthesize('The quick brown fox jumps over the lazy dog.', { signal: live() });
    const chunks = await collect(synthesis);
    expect(chunks.length).toBeGreaterThan(3);
    expect(chunks.slice(0, -1).every((c) => c.length === 3200)).toBe(true);
    expect(synthesis.stats.ttfbMs).toBeGreaterThan(0);
    expect(synthesis.stats.samples).toBe(chunks.reduce((n, c) => n + c.length, 0));
    const vad = await loadSileroVad();
    const stream = vad.openStream();
    const audio16k = await resample(concatFloat32(chunks.map(pcm16ToFloat32)), 24_000, 16_000);
    const events = [...(await stream.push(concatFloat32([new Float32Array(8000), audio16k, new Float32Array(16000)]))), ...stream.flush()];
    expect(events.some((e) => e.type === 'speech_end')).toBe(true);
    await vad.dispose();
  });

  it('plays a two-clause response in order, the second clause requested as soon as the first is done', async () => {
    const texts = ['First of all, this clause comes first,', 'and then the second sentence follows it.'];
    async function* pieces() {
      yield* texts;
    }
    const speech = speakInOrder(tts, pieces(), { signal: live() });
    const iterator = speech[Symbol.asyncIterator]();
    const first = await iterator.next();
    // The reader holds on to the first chunk; synthesis runs ahead: the second clause is asked for
    // once the first clause's audio has arrived, not when the reader gets to its end.
    await waitFor(() => requestsReceived().includes(texts[1]!), 20_000);
    const order: number[] = [(first.value as { piece: number }).piece];
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) order.push(next.value.piece);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(new Set(order)).toEqual(new Set([0, 1]));
    // Each piece's audio is exactly what the server made for that text alone.
    for (const [i, text] of texts.entries()) {
      const alone = await collect(tts.synthesize(text, { signal: live() }));
      expect(speech.pieces[i]!.stats.samples).toBe(alone.reduce((n, c) => n + c.length, 0));
    }
  });

  it('abort mid-utterance closes the socket and no further chunk is emitted', async () => {
    const abort = new AbortController();
    const received: Int16Array[] = [];
    const synthesis = tts.synthesize('This is a rather long sentence that takes the server a good while to speak out loud.', { signal: abort.signal });
    for await (const chunk of synthesis) {
      received.push(chunk);
      if (received.length === 2) abort.abort();
    }
    expect(received).toHaveLength(2);
    // The server stopped: the next request is not turned away for long.
    const next = tts.synthesize('Are you still there?', { signal: live() });
    await collect(next);
    expect(next.stats.samples).toBeGreaterThan(0);
  });

  it('waits for a busy server instead of failing', async () => {
    const first = tts.synthesize('One generation at a time, that is the rule of this server.', { signal: live() });
    const second = tts.synthesize('I have to wait for my turn.', { signal: live() });
    const [a, b] = await Promise.all([collect(first), collect(second)]);
    expect(a.length).toBeGreaterThan(0);
    expect(b.length).toBeGreaterThan(0);
    expect(first.stats.requests + second.stats.requests).toBeGreaterThan(2);
  });

  it('turns a server generation error into a clear error', async () => {
    await expect(collect(tts.synthesize('please [[fail]] now', { signal: live() }))).rejects.toThrow('TTS generation failed: CUDA out of memory (simulated)');
  });

  it('rejects empty text and unknown voices before any request; splits long text instead of rejecting it', async () => {
    expect(() => tts.synthesize('   ', { signal: live() })).toThrow(InvalidInputError);
    expect(() => tts.synthesize('Hello there.', { signal: live(), voice: 'en-Nobody' })).toThrow(/unknown voice "en-Nobody"; valid voices: en-Carter_man, en-Davis_man/);
    const long = Array.from({ length: 12 }, (_, i) => `This is sentence number ${i + 1} of a long answer.`).join(' ');
    expect(splitForRequests(long, 400).every((part) => part.length <= 400)).toBe(true);
    const synthesis = tts.synthesize(long, { signal: live() });
    await collect(synthesis);
    expect(synthesis.stats.requests).toBeGreaterThan(1);
  }, 60_000);

  it('normalises numbers and symbols to words before sending', async () => {
    const synthesis = tts.synthesize('It costs $5 & takes 20% longer.', { signal: live() });
    await collect(synthesis);
    expect(synthesis.stats.samples).toBeGreaterThan(0);
    expect(requestsReceived()).toContain('It costs five dollars and takes twenty percent longer.');
    expect(requestsReceived().some((text) => /[$&%\d]/.test(text))).toBe(false);
  });
});

describe('TTS sidecar lifecycle', () => {
  it('restarts a crashed server: the utterance in flight fails clearly, the next one succeeds', async () => {
    const own = await startDoubleSidecar(log);
    const client = new VibeVoiceClient(own, {}, log);
    await expect(collect(client.synthesize('Goodbye cruel [[crash]] world.', { signal: live() }))).rejects.toThrow(/TTS server died mid-utterance/);
    const after = await collect(client.synthesize('I am back again.', { signal: live() }));
    expect(after.length).toBeGreaterThan(0);
    expect(lines.some((l) => l.includes('TTS server died'))).toBe(true);
    await client.dispose();
  }, 60_000);

  it('a synthesis cancelled while the server restarts sends no request once it is back', async () => {
    const own = await startDoubleSidecar(log);
    const client = new VibeVoiceClient(own, {}, log);
    await expect(collect(client.synthesize('Goodbye cruel [[crash]] world.', { signal: live() }))).rejects.toThrow(/TTS server died mid-utterance/);
    // The server is restarting: this synthesis waits for it, and is cancelled meanwhile.
    const abort = new AbortController();
    const synthesis = client.synthesize('Nobody wants to hear this any more.', { signal: abort.signal });
    abort.abort();
    expect(await collect(synthesis)).toEqual([]);
    await own.ready();
    expect(synthesis.stats.requests).toBe(0);
    await client.dispose();
  }, 60_000);

  // The server would listen only after 10 minutes: the failure comes from our start-up timeout.
  it('a server that never becomes ready fails start-up with a clear error within the timeout', async () => {
    await expect(startDoubleSidecar(log, ['--startup-ms', '600000'], { startupTimeoutMs: 1500 })).rejects.toThrow(/did not answer http:\/\/127\.0\.0\.1:\d+\/config within 1500 ms/);
  });

  /**
   * Starts `Sidecar` with a command that cannot run, while something answering 404 on the server's
   * port counts the start-up polls; returns how many came after start-up had failed.
   */
  async function pollsAfterSpawnFailure(Sidecar: typeof TtsSidecar): Promise<number> {
    const config = await doubleSidecarConfig([], { command: ['/nonexistent/vibevoice-server'] });
    let polls = 0;
    const counter = createServer((_req, res) => void (polls++, res.writeHead(404).end()));
    await new Promise<void>((resolve) => counter.listen(config.port, config.host, resolve));
    try {
      await expect(Sidecar.start(config, log)).rejects.toThrow(/could not be started \(\/nonexistent\/vibevoice-server\)/);
      const atFailure = polls;
      await new Promise((resolve) => setTimeout(resolve, 5 * 100)); // five poll intervals
      return polls - atFailure;
    } finally {
      await new Promise((resolve) => counter.close(resolve));
    }
  }

  it('a command that cannot run fails start-up at once, and polling for the server stops', async () => {
    expect(await pollsAfterSpawnFailure(TtsSidecar)).toBeLessThanOrEqual(1); // at most the one already on its way
  });

  // Where setpriv is installed the server is spawned through it, and a command that cannot run is
  // setpriv's exit 127; without setpriv the spawn itself fails ('error', no 'exit'), a path of its own.
  it('without setpriv too, a command that cannot run fails start-up at once, and polling for the server stops', async () => {
    vi.stubEnv('PATH', '/nonexistent'); // no setpriv to be found
    vi.resetModules(); // a fresh sidecar module, which looks for setpriv again
    try {
      const { TtsSidecar: WithoutSetpriv } = await import('../../src/tts/sidecar.js');
      expect(await pollsAfterSpawnFailure(WithoutSetpriv)).toBeLessThanOrEqual(1);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('stop() while a crashed server waits to restart: no restart, and ready() fails at once', async () => {
    const own = await startDoubleSidecar(log, [], { restartDelayMs: 600_000, maxRestartDelayMs: 600_000 });
    const client = new VibeVoiceClient(own, {}, log);
    await expect(collect(client.synthesize('Goodbye cruel [[crash]] world.', { signal: live() }))).rejects.toThrow(/TTS server died mid-utterance/);
    // A synthesis already waiting for the restart when stop() comes must not wait forever.
    const waiting = own.ready().then(
      () => 'ready',
      (error: Error) => error.message,
    );
    await own.stop();
    expect(await Promise.race([waiting, new Promise<string>((resolve) => setTimeout(() => resolve('still waiting to restart'), 0))])).toBe('the TTS server was stopped');
    // Failed already, not after the ten-minute restart delay: it loses no race with a timer due now.
    const first = await Promise.race([
      own.ready().then(
        () => 'ready',
        (error: Error) => error.message,
      ),
      new Promise<string>((resolve) => setTimeout(() => resolve('still waiting to restart'), 0)),
    ]);
    expect(first).toBe('the TTS server was stopped');
  });

  it('the TTS server dies with its worker, even when the worker is killed with SIGKILL', async () => {
    const parent = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/sidecar-parent.ts'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    parent.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
    const port = Number((await waitFor(() => /ready (\d+)/.exec(stdout), 20_000))[1]);
    expect(await portAnswers(port)).toBe(true);
    parent.kill('SIGKILL');
    // The orphan would hold the port, and the next start would fail on it.
    for (const deadline = Date.now() + 10_000; await portAnswers(port); ) {
      if (Date.now() > deadline) throw new Error(`the TTS server outlived its parent and still holds port ${port}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }, 30_000);
});
