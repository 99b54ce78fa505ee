/**
 * The TTS sidecar manager and the stream client (docs/tts-protocol.md) against our TTS server
 * (`python -m s2s_tts`) with its espeak-ng engine double, which can be told to fail ([[fail]], [[crash]]).
 */
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { resample } from '../../src/audio/resample.js';
import { concatFloat32, pcm16ToFloat32 } from '../../src/audio/pcm.js';
import { InvalidInputError, S2sError } from '../../src/errors.js';
import { Logger } from '../../src/log/logger.js';
import { TtsPortTakenError, TtsSidecar } from '../../src/tts/sidecar.js';
import { TtsServerClient, TtsStreamError } from '../../src/tts/tts-client.js';
import { speakText, type TtsStream } from '../../src/tts/tts.js';
import { loadSileroVad } from '../../src/vad/vad.js';
import { doubleSidecarConfig, espeakServerCommand, freePort, startDoubleSidecar, type EspeakServerOptions } from '../helpers/tts-sidecar.js';
import { collect } from '../helpers/collect.js';
import { waitFor } from '../helpers/harness.js';

const lines: string[] = [];
const log = new Logger({ level: 'DEBUG', jsonLines: true, write: (line) => lines.push(line) });
let sidecar: TtsSidecar;
let tts: TtsServerClient;

beforeAll(async () => {
  sidecar = await startDoubleSidecar(log, { frameMs: 15, maxStreams: 4 });
  tts = new TtsServerClient(sidecar, {}, log);
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
const deaths = () => lines.filter((l) => l.includes('TTS server died')).length;

/** Pushes `text` in deltas of `size` characters. */
const pushInDeltas = (stream: TtsStream, text: string, size = 3) => {
  for (let i = 0; i < text.length; i += size) stream.push(text.slice(i, i + size));
};

/** A client on a TTS server of its own (the double, with `options`); the server is stopped after `use`. */
async function withOwnServer(use: (client: TtsServerClient, own: TtsSidecar) => Promise<void>, options: EspeakServerOptions = {}): Promise<void> {
  const own = await startDoubleSidecar(log, options);
  const client = new TtsServerClient(own, {}, log);
  try {
    await use(client, own);
  } finally {
    await client.dispose();
  }
}

describe('TTS stream client against the protocol double', () => {
  it('reads the server from /config: its engine, pid and voices', () => {
    expect(tts.voices).toContain('en-Carter_man');
    expect(tts.defaultVoice).toBe('en-Carter_man');
    expect(sidecar.server.engine).toBe('espeak-double');
    expect(sidecar.server.maxStreams).toBe(4);
  });

  it('streams 24 kHz PCM16 frames of text pushed in deltas; ttfb counts from the first text; the audio is speech', async () => {
    const stream = tts.open({ signal: live() });
    pushInDeltas(stream, 'The quick brown fox jumps over the lazy dog.');
    stream.end();
    const chunks = await collect(stream);
    expect(chunks.length).toBeGreaterThan(3);
    expect(chunks.slice(0, -1).every((c) => c.length === 3200)).toBe(true);
    expect(stream.stats.firstTextAt).not.toBeNull();
    expect(stream.stats.ttfbMs).toBeGreaterThan(0);
    expect(stream.stats.queued).toBe(false);
    expect(stream.stats.samples).toBe(chunks.reduce((n, c) => n + c.length, 0));
    const vad = await loadSileroVad();
    const vadStream = vad.openStream();
    const audio16k = await resample(concatFloat32(chunks.map(pcm16ToFloat32)), 24_000, 16_000);
    const events = [...(await vadStream.push(concatFloat32([new Float32Array(8000), audio16k, new Float32Array(16000)]))), ...vadStream.flush()];
    expect(events.some((e) => e.type === 'speech_end')).toBe(true);
    await vad.dispose();
  });

  it('speech starts while text still arrives: the first audio comes before the stream is ended', async () => {
    const stream = tts.open({ signal: live() });
    stream.push('Here is the first part of a long answer, ');
    const iterator = stream[Symbol.asyncIterator]();
    const first = await iterator.next();
    expect(first.done).toBe(false);
    stream.push('and here is the rest of it.');
    stream.end();
    let rest = 0;
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) rest++;
    expect(rest).toBeGreaterThan(0);
  });

  it('normalises numbers, symbols and markdown to words on the way, whatever the delta split', async () => {
    const stream = tts.open({ signal: live() });
    pushInDeltas(stream, 'It costs **$5** & takes 20% longer.', 2);
    stream.end();
    await collect(stream);
    // What went to the server, message by message.
    expect(stream.stats.spokenText.replace(/\s+/g, ' ').trim()).toBe('It costs five dollars and takes twenty percent longer.');
    expect(stream.stats.samples).toBeGreaterThan(0);
  });

  it('abort mid-stream sends cancel and closes: no further chunk, and the server is free again', async () => {
    const abort = new AbortController();
    const received: Int16Array[] = [];
    const stream = speakText(tts, 'This is a rather long sentence that takes the server a good while to speak out loud, on and on.', { signal: abort.signal });
    for await (const chunk of stream) {
      received.push(chunk);
      if (received.length === 2) abort.abort();
    }
    expect(received).toHaveLength(2);
    const next = speakText(tts, 'Are you still there?', { signal: live() });
    await collect(next);
    expect(next.stats.samples).toBeGreaterThan(0);
  });

  it('four streams at once all speak side by side: none waits for another to finish', async () => {
    const firstAudio: number[] = [];
    const finished: number[] = [];
    await Promise.all(
      [0, 1, 2, 3].map(async (i) => {
        const stream = speakText(tts, `Stream number ${i + 1} says a whole sentence of its own, word by word.`, { signal: live() });
        for await (const _chunk of stream) firstAudio[i] ??= performance.now();
        finished[i] = performance.now();
      }),
    );
    expect(Math.max(...firstAudio)).toBeLessThan(Math.min(...finished));
  });

  it('past the server limit a stream is queued, not refused, and a confirmed one goes before a speculative one', async () => {
    await withOwnServer(async (client) => {
      const first = speakText(client, 'The first stream takes the only slot for a while.', { signal: live() });
      const firstDone = collect(first);
      await waitFor(() => first.stats.samples > 0, 20_000);
      const speculative = speakText(client, 'A speculative answer waits.', { signal: live(), priority: 'speculative' });
      const confirmed = speakText(client, 'A confirmed answer goes first.', { signal: live() });
      const order: string[] = [];
      await Promise.all([
        firstDone,
        collect(speculative).then(() => order.push('speculative')),
        collect(confirmed).then(() => order.push('confirmed')),
      ]);
      expect(speculative.stats.queued).toBe(true);
      expect(confirmed.stats.queued).toBe(true);
      expect(confirmed.stats.queueWaitMs).toBeGreaterThan(0);
      expect(order).toEqual(['confirmed', 'speculative']);
    }, { frameMs: 10, maxStreams: 1 });
  }, 60_000);

  it('a promoted speculative stream is confirmed', async () => {
    await withOwnServer(async (client) => {
      const first = speakText(client, 'The first stream takes the only slot for a while.', { signal: live() });
      const firstDone = collect(first);
      await waitFor(() => first.stats.samples > 0, 20_000);
      const promoted = client.open({ signal: live(), priority: 'speculative' });
      const other = speakText(client, 'A confirmed answer opened later.', { signal: live() });
      promoted.push('The speculative answer, now confirmed.');
      promoted.promote();
      promoted.end();
      const order: string[] = [];
      await Promise.all([firstDone, collect(promoted).then(() => order.push('promoted')), collect(other).then(() => order.push('other'))]);
      // Both confirmed: in order of opening.
      expect(order).toEqual(['promoted', 'other']);
    }, { frameMs: 10, maxStreams: 1 });
  }, 60_000);

  it('named server errors fail only their stream, with the code; the other streams go on', async () => {
    const other = speakText(tts, 'Meanwhile another stream keeps talking, sentence after sentence, without a care.', { signal: live() });
    const otherDone = collect(other);
    const failing = speakText(tts, 'please [[fail]] right now', { signal: live() });
    const error = await collect(failing).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TtsStreamError);
    expect(error).toMatchObject({ code: 'TTS_ENGINE_ERROR', serverCode: 'engine_error', retryable: true });
    const badOption = speakText(tts, 'Hello there my friend.', { signal: live(), steps: 99 });
    await expect(collect(badOption)).rejects.toMatchObject({ code: 'TTS_BAD_OPTION' });
    expect((await otherDone).length).toBeGreaterThan(3);
  });

  it('a stream whose engine goes silent after its text ended fails as stalled, frees its slot, and the others go on', async () => {
    // Its own client (same server) with a short watchdog; not disposed: that would stop the shared server.
    const watchful = new TtsServerClient(sidecar, { stallMs: 500 }, log);
    const other = speakText(watchful, 'Meanwhile another stream keeps talking, sentence after sentence, without a care.', { signal: live() });
    const otherDone = collect(other);
    const stalled = speakText(watchful, 'This answer [[stall]] never comes.', { signal: live() });
    await expect(collect(stalled)).rejects.toMatchObject({ code: 'TTS_STALLED', retryable: true });
    expect(lines.some((l) => l.includes('TTS stream stalled'))).toBe(true);
    expect((await otherDone).length).toBeGreaterThan(3);
    // The stalled stream's socket went away: the server dropped it.
    const active = async () => ((await (await fetch(`${sidecar.baseUrl}/config`)).json()) as { streams: { active: number } }).streams.active;
    for (let polls = 0; (await active()) > 0; polls++) {
      if (polls > 400) throw new Error('the stalled stream still holds its slot on the server');
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  });

  it('refuses an unknown voice before any connection; an ended stream with nothing speakable is just empty', async () => {
    expect(() => tts.open({ signal: live(), voice: 'en-Nobody' })).toThrow(InvalidInputError);
    expect(() => tts.open({ signal: live(), voice: 'en-Nobody' })).toThrow(/unknown voice "en-Nobody"; valid voices: en-Carter_man, en-Davis_man/);
    const empty = speakText(tts, '🎉 **', { signal: live() });
    expect(await collect(empty)).toEqual([]);
    expect(empty.stats.firstTextAt).toBeNull();
    expect(empty.stats.spokenText).toBe('');
  });

  it('a stream aborted before it connects sends nothing', async () => {
    const abort = new AbortController();
    abort.abort();
    const stream = speakText(tts, 'Never said.', { signal: abort.signal });
    expect(await collect(stream)).toEqual([]);
  });
});

describe('TTS sidecar lifecycle', () => {
  it('a server that dies mid-stream fails the stream at once with a clear error; it is restarted and the next stream speaks', async () => {
    await withOwnServer(async (client) => {
      const before = deaths();
      const error = await collect(speakText(client, 'Goodbye cruel [[crash]] world, it was nice.', { signal: live() })).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(S2sError);
      expect((error as S2sError).message).toMatch(/TTS server (died mid-stream|closed the stream before it finished)/);
      // A stream opened before the worker has seen the exit fails at once too; after it, it waits for the restart.
      await waitFor(() => deaths() > before);
      const after = await collect(speakText(client, 'I am back again.', { signal: live() }));
      expect(after.length).toBeGreaterThan(0);
      expect(lines.some((l) => l.includes('TTS server died'))).toBe(true);
    });
  }, 60_000);

  it('a stream opened just as its server dies (before the sidecar saw the exit) waits for the restart and speaks', async () => {
    await withOwnServer(async (client, own) => {
      const before = deaths();
      // The stream connects at once: the sidecar has not seen the exit yet, the port refuses it (or the
      // crash notice comes first). Before, that failed the stream (TTS_CONNECTION_FAILED / TTS_CRASHED).
      process.kill(own.server.pid, 'SIGKILL');
      const chunks = await collect(speakText(client, 'I was opened as the server died.', { signal: live() }));
      expect(chunks.length).toBeGreaterThan(0);
      expect(deaths()).toBeGreaterThan(before);
    });
  }, 60_000);

  it('a stream cancelled while the server restarts sends no text once it is back', async () => {
    await withOwnServer(async (client, own) => {
      const before = deaths();
      await expect(collect(speakText(client, 'Goodbye cruel [[crash]] world, it was nice.', { signal: live() }))).rejects.toThrow(S2sError);
      await waitFor(() => deaths() > before);
      // The server is restarting: this stream waits for it, and is cancelled meanwhile.
      const abort = new AbortController();
      const stream = speakText(client, 'Nobody wants to hear this any more.', { signal: abort.signal });
      abort.abort();
      expect(await collect(stream)).toEqual([]);
      await own.ready();
      await new Promise((resolve) => setTimeout(resolve, 200));
      // No stream was ever opened on the restarted server.
      expect(((await (await fetch(`${own.baseUrl}/config`)).json()) as { streams: unknown }).streams).toEqual({ active: 0, waiting: 0 });
    });
  }, 60_000);

  // The server would listen only after 10 minutes: the failure comes from our start-up timeout.
  it('a server that never becomes ready fails start-up with a clear error within the timeout', async () => {
    // A process that never listens, as a server stuck loading its model.
    await expect(startDoubleSidecar(log, {}, { command: ['sleep', '600'], startupTimeoutMs: 1500 })).rejects.toThrow(/did not answer http:\/\/127\.0\.0\.1:\d+\/config within 1500 ms/);
  });

  it('a foreign server on the TTS port is never taken for ours: start-up stops with one line naming the port and S2S_TTS_PORT', async () => {
    const foreign = await startDoubleSidecar(log);
    try {
      const config = await doubleSidecarConfig({}, { port: foreign.config.port });
      const error = await TtsSidecar.start(config, log).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TtsPortTakenError);
      expect((error as Error).message).toBe(
        `port ${foreign.config.port} (S2S_TTS_PORT) is already in use (another process listens on it): stop that process or set S2S_TTS_PORT to a free port for the TTS server on 127.0.0.1`,
      );
      expect((error as Error).message).not.toContain('\n');
    } finally {
      await foreign.stop();
    }
  });

  it("a server answering /config with another process's pid is not ours (a wrapper that forks instead of exec)", async () => {
    const port = await freePort();
    // sh forks the server (no exec): the server's pid is not our child's.
    const server = espeakServerCommand(port).map((arg) => `'${arg}'`).join(' ');
    const config = await doubleSidecarConfig({}, { port, command: ['sh', '-c', `${server} & wait`] });
    const error = await TtsSidecar.start(config, log).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TtsPortTakenError);
    const named = new RegExp(`^port ${port} \\(S2S_TTS_PORT\\) is already in use \\(a TTS server with pid (\\d+) answers there, ours is \\d+\\)`).exec((error as Error).message);
    expect(named).not.toBeNull();
    // The forked server outlives sh (it was never ours to stop): stop it here, by the pid the error names.
    const pid = Number(named![1]);
    process.kill(pid, 'SIGKILL');
    await waitFor(() => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    }, 10_000);
  }, 30_000);

  /** Starts `Sidecar` with a command that cannot run; returns how many /config polls came after start-up failed. */
  async function pollsAfterSpawnFailure(Sidecar: typeof TtsSidecar): Promise<number> {
    const config = await doubleSidecarConfig({}, { command: ['/nonexistent/tts-server'] });
    let polls = 0;
    const realFetch = globalThis.fetch;
    const spy = vi.spyOn(globalThis, 'fetch').mockImplementation((input, init) => {
      if (String(input).endsWith('/config')) polls++;
      return realFetch(input, init);
    });
    try {
      await expect(Sidecar.start(config, log)).rejects.toThrow(/could not be started \(\/nonexistent\/tts-server\)/);
      const atFailure = polls;
      await new Promise((resolve) => setTimeout(resolve, 5 * 100)); // five poll intervals
      return polls - atFailure;
    } finally {
      spy.mockRestore();
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
    const own = await startDoubleSidecar(log, {}, { restartDelayMs: 600_000, maxRestartDelayMs: 600_000 });
    const client = new TtsServerClient(own, {}, log);
    const before = deaths();
    await expect(collect(speakText(client, 'Goodbye cruel [[crash]] world, it was nice.', { signal: live() }))).rejects.toThrow(S2sError);
    await waitFor(() => deaths() > before);
    // A stream already waiting for the restart when stop() comes must not wait forever.
    const waiting = own.ready().then(
      () => 'ready',
      (error: Error) => error.message,
    );
    await own.stop();
    expect(await Promise.race([waiting, new Promise<string>((resolve) => setTimeout(() => resolve('still waiting to restart'), 0))])).toBe('the TTS server was stopped');
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

