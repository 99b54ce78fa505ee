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
    expect(sent.length).toBe(3); // 0, 100 and 200 ms of lead
    const drained = pacer.drained();
    await vi.advanceTimersByTimeAsync(1_000);
    await drained;
    expect(sent.length).toBe(10);
    // 1 s of audio with 200 ms lead: the last chunk leaves when 200 ms of it remain to play, 700 ms in.
    expect(sent.at(-1)! - started).toBeGreaterThanOrEqual(700);
    expect(sent.at(-1)! - started).toBeLessThan(710);
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
