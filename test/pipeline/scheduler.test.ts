import { describe, expect, it } from 'vitest';
import { EngineLane, Scheduler, WorkPriority, WorkSkippedError } from '../../src/pipeline/scheduler.js';

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('EngineLane', () => {
  it('gives a freed slot to confirmed work before speculative before partial, then in order of arrival', async () => {
    const lane = new EngineLane('test', 1);
    const first = await lane.acquire('confirmed', undefined);
    const order: string[] = [];
    const wait = (name: string, priority: 'confirmed' | 'speculative') =>
      lane.acquire(priority, undefined).then((slot) => {
        order.push(name);
        slot.release();
      });
    const all = [wait('spec-1', 'speculative'), wait('conf-1', 'confirmed'), wait('spec-2', 'speculative'), wait('conf-2', 'confirmed')];
    expect(lane.waiting()).toBe(4);
    first.release();
    await Promise.all(all);
    expect(order).toEqual(['conf-1', 'conf-2', 'spec-1', 'spec-2']);
  });

  it('a promoted speculative item moves ahead of speculative work queued before it', async () => {
    const lane = new EngineLane('test', 1);
    const first = await lane.acquire('confirmed', undefined);
    const order: string[] = [];
    const promoted = new WorkPriority('speculative');
    const a = lane.acquire('speculative', undefined).then((s) => (order.push('a'), s.release()));
    const b = lane.acquire(promoted, undefined).then((s) => (order.push('b'), s.release()));
    promoted.promote();
    first.release();
    await Promise.all([a, b]);
    expect(order).toEqual(['b', 'a']);
  });

  it('work whose signal fires while it waits leaves the lane and never runs', async () => {
    const lane = new EngineLane('test', 1);
    const first = await lane.acquire('confirmed', undefined);
    const gone = new AbortController();
    let ran = false;
    const dropped = lane.run(async () => (ran = true), { signal: gone.signal });
    expect(lane.waiting()).toBe(1);
    gone.abort(new Error('left'));
    await expect(dropped).rejects.toThrow('left');
    expect(lane.waiting()).toBe(0);
    first.release();
    await tick();
    expect(ran).toBe(false);
    expect(lane.stats.dropped).toBe(1);
    expect(lane.active).toBe(0);
  });

  it('a partial transcript is skipped, not queued, unless the engine is idle', async () => {
    const lane = new EngineLane('test', 2);
    const first = await lane.acquire('confirmed', undefined);
    await expect(lane.acquire('partial', undefined)).rejects.toBeInstanceOf(WorkSkippedError);
    first.release();
    const slot = await lane.acquire('partial', undefined);
    slot.release();
    expect(lane.stats).toMatchObject({ started: 2, skipped: 1 });
  });

  it('reports how long work waited', async () => {
    const lane = new EngineLane('test', 1);
    const first = await lane.acquire('confirmed', undefined);
    const later = lane.run(async () => 'done');
    await new Promise((resolve) => setTimeout(resolve, 30));
    first.release();
    const { value, waitMs } = await later;
    expect(value).toBe('done');
    expect(waitMs).toBeGreaterThanOrEqual(25);
  });
});

describe('Scheduler.mayPreempt', () => {
  it('lets preemption use idle capacity only: no confirmed work waiting, a free LLM and TTS slot', async () => {
    const scheduler = new Scheduler({ asrSlots: 1, llmSlots: 2, ttsSlots: 2, preemptionBackoff: true });
    expect(scheduler.mayPreempt()).toBe(true);
    const tts = await scheduler.tts.acquire('confirmed', undefined);
    expect(scheduler.mayPreempt()).toBe(true);
    const tts2 = await scheduler.tts.acquire('confirmed', undefined);
    // Every TTS stream is speaking: a preemptive answer would have to wait for one.
    expect(scheduler.mayPreempt()).toBe(false);
    tts2.release();
    const asr = await scheduler.asr.acquire('confirmed', undefined);
    const waiting = scheduler.asr.acquire('confirmed', undefined);
    // A confirmed turn waits for the ASR: its answer comes first.
    expect(scheduler.mayPreempt()).toBe(false);
    asr.release();
    (await waiting).release();
    expect(scheduler.mayPreempt()).toBe(true);
    tts.release();
    expect(scheduler.preemptionsDeclined).toBe(2);
    const off = new Scheduler({ asrSlots: 1, llmSlots: 1, ttsSlots: 1, preemptionBackoff: false });
    await off.tts.acquire('confirmed', undefined);
    expect(off.mayPreempt()).toBe(true);
  });
});
