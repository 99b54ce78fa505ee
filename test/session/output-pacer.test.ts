/**
 * The output pacer keeps only `leadMs` of audio ahead of playback, so a pause or flush really stops
 * what the listener will hear; pause/resume keeps every chunk, flush drops the unsent ones.
 */
import { describe, expect, it } from 'vitest';
import { OutputPacer } from '../../src/session/output-pacer.js';

const chunk = () => new Int16Array(2400); // 100 ms at 24 kHz
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('OutputPacer', () => {
  it('sends the lead at once, then at playback speed', async () => {
    const sent: number[] = [];
    const pacer = new OutputPacer(() => sent.push(performance.now()), { sampleRate: 24_000, leadMs: 200 });
    const started = performance.now();
    for (let i = 0; i < 10; i++) pacer.enqueue(chunk());
    expect(sent.length).toBe(3); // 0, 100 and 200 ms of lead
    await pacer.drained();
    expect(sent.length).toBe(10);
    // 1 s of audio with 200 ms lead: the last chunk leaves about 700 ms after the first.
    expect(sent.at(-1)! - started).toBeGreaterThan(600);
    expect(sent.at(-1)! - started).toBeLessThan(1_500);
  });

  it('pause holds everything unsent, resume sends it all; flush drops it', async () => {
    let sent = 0;
    const pacer = new OutputPacer(() => sent++, { sampleRate: 24_000, leadMs: 100 });
    for (let i = 0; i < 6; i++) pacer.enqueue(chunk());
    pacer.pause();
    const atPause = sent;
    await sleep(400);
    expect(sent).toBe(atPause);
    expect(pacer.speaking).toBe(true);
    pacer.resume();
    await pacer.drained();
    expect(sent).toBe(6);

    for (let i = 0; i < 6; i++) pacer.enqueue(chunk());
    const beforeFlush = sent;
    pacer.flush();
    await sleep(300);
    expect(sent).toBe(beforeFlush);
    expect(pacer.speaking).toBe(false);
    await pacer.drained();
  });
});
