/**
 * The output pacer keeps only `leadMs` of audio ahead of playback, so a pause or flush really stops
 * what the listener will hear; pause/resume keeps every chunk, flush drops the unsent ones.
 * Runs on fake timers: the clock is the test's, so the timings checked are exact.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { OutputPacer } from '../../src/session/output-pacer.js';

const chunk = () => new Int16Array(2400); // 100 ms at 24 kHz

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('OutputPacer', () => {
  it('sends the lead at once, then at playback speed', async () => {
    const sent: number[] = [];
    const pacer = new OutputPacer(() => sent.push(performance.now()), { sampleRate: 24_000, leadMs: 200 });
    const started = performance.now();
    for (let i = 0; i < 10; i++) pacer.enqueue(chunk());
    expect(sent.length).toBe(2); // 200 ms of lead, not a chunk more
    const drained = pacer.drained();
    await vi.advanceTimersByTimeAsync(1_000);
    await drained;
    expect(sent.length).toBe(10);
    // 1 s of audio with 200 ms lead: the last chunk leaves when 200 ms remain to play, 800 ms in.
    expect(sent.at(-1)! - started).toBeGreaterThanOrEqual(800);
    expect(sent.at(-1)! - started).toBeLessThan(810);
  });

  it('never has more than the lead ahead of playback', async () => {
    const ahead: number[] = [];
    let playbackEndsAt = 0;
    const pacer = new OutputPacer(
      (pcm) => {
        playbackEndsAt = Math.max(playbackEndsAt, performance.now()) + (pcm.length / 24_000) * 1000;
        ahead.push(playbackEndsAt - performance.now());
      },
      { sampleRate: 24_000, leadMs: 250 },
    );
    for (let i = 0; i < 20; i++) pacer.enqueue(chunk());
    await vi.advanceTimersByTimeAsync(3_000);
    expect(ahead).toHaveLength(20);
    expect(Math.max(...ahead)).toBeLessThanOrEqual(250);
  });

  it('a chunk longer than the lead goes out in pieces of half the lead: the listener never runs dry, a pause holds all but the lead', async () => {
    const sent: { at: number; ms: number }[] = [];
    const pacer = new OutputPacer((pcm) => sent.push({ at: performance.now(), ms: (pcm.length / 24_000) * 1000 }), { sampleRate: 24_000, leadMs: 80 });
    pacer.enqueue(new Int16Array(24_000)); // 1 s in one chunk
    expect(sent.map((p) => p.ms)).toEqual([40, 40]);
    pacer.setLeadMs(80);
    await vi.advanceTimersByTimeAsync(300);
    pacer.pause();
    // What was sent is at most the lead ahead of what has played.
    expect(sent.reduce((ms, p) => ms + p.ms, 0) - 300).toBeLessThanOrEqual(80);
    pacer.resume();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(sent.reduce((ms, p) => ms + p.ms, 0)).toBe(1_000);
    let playedUntil = 0;
    for (const { at, ms } of sent) {
      expect(at).toBeLessThanOrEqual(Math.max(playedUntil, sent[0]!.at));
      playedUntil = Math.max(playedUntil, at) + ms;
    }
  });

  it('holds while the client is not reading, reports it stuck once after maxHoldMs, and goes on when it reads again', async () => {
    let reading = true;
    let sent = 0;
    let stuck = 0;
    const pacer = new OutputPacer(() => sent++, { sampleRate: 24_000, leadMs: 100, canSend: () => reading, maxHoldMs: 1_000, onStuck: () => stuck++ });
    for (let i = 0; i < 10; i++) pacer.enqueue(chunk());
    expect(sent).toBe(1);
    reading = false;
    await vi.advanceTimersByTimeAsync(900);
    expect(sent).toBe(1); // nothing piles up in a buffer the client does not read
    expect(stuck).toBe(0);
    await vi.advanceTimersByTimeAsync(200);
    expect(stuck).toBe(1);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(stuck).toBe(1);
    reading = true;
    await vi.advanceTimersByTimeAsync(2_000);
    expect(sent).toBe(10);
    await pacer.drained();
  });

  it('pause holds everything unsent, resume sends it all; flush drops it', async () => {
    let sent = 0;
    const pacer = new OutputPacer(() => sent++, { sampleRate: 24_000, leadMs: 100 });
    for (let i = 0; i < 6; i++) pacer.enqueue(chunk());
    pacer.pause();
    const atPause = sent;
    await vi.advanceTimersByTimeAsync(400);
    expect(sent).toBe(atPause);
    expect(pacer.speaking).toBe(true);
    pacer.resume();
    await vi.advanceTimersByTimeAsync(1_000);
    await pacer.drained();
    expect(sent).toBe(6);

    for (let i = 0; i < 6; i++) pacer.enqueue(chunk());
    const beforeFlush = sent;
    pacer.flush();
    await vi.advanceTimersByTimeAsync(300);
    expect(sent).toBe(beforeFlush);
    expect(pacer.speaking).toBe(false);
    await pacer.drained();
  });
});
