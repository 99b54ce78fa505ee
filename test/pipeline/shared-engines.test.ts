/**
 * Many conversations on one worker's engines (issue 19): a conversation that leaves, is cancelled
 * or is cut by barge-in frees its share at once. Its queued ASR, LLM and TTS work never reaches
 * the engines (recording doubles), and the other conversations' next work starts as soon as the
 * work ahead of it is done, not after the dropped work.
 */
import { describe, expect, it } from 'vitest';
import type { Engines } from '../../src/pipeline/engines.js';
import { respond } from '../../src/pipeline/respond.js';
import { scheduleEngines } from '../../src/pipeline/scheduled-engines.js';
import { Scheduler } from '../../src/pipeline/scheduler.js';
import type { Vad } from '../../src/vad/vad.js';
import { speakText } from '../../src/tts/tts.js';
import { RecordingAsrDouble } from '../doubles/recording-asr-double.js';
import { RecordingLlmDouble, RecordingTtsDouble } from '../doubles/recording-engines-double.js';

const DECODE_MS = 150;

function sharedEngines() {
  const asr = new RecordingAsrDouble(DECODE_MS);
  const llm = new RecordingLlmDouble({ words: 6, wordMs: 25 });
  const tts = new RecordingTtsDouble({ chunks: 6, chunkMs: 25 });
  // One slot per engine, so every second piece of work waits.
  const scheduler = new Scheduler({ asrSlots: 1, llmSlots: 1, ttsSlots: 1, preemptionBackoff: true });
  const engines: Engines = scheduleEngines({ vad: {} as Vad, asr, llm, tts, dispose: async () => undefined }, scheduler);
  return { asr, llm, tts, scheduler, engines };
}

async function drain(items: AsyncIterable<unknown>): Promise<number> {
  let n = 0;
  for await (const _ of items) n++;
  return n;
}

const settle = (ms = 20) => new Promise((resolve) => setTimeout(resolve, ms));

describe('shared engines: dropped work never runs', () => {
  it('a conversation that leaves (or whose job is cancelled): its queued ASR, LLM and TTS work never runs, and the next work starts at once', async () => {
    const { asr, llm, tts, scheduler, engines } = sharedEngines();
    const a = new AbortController();
    const b = new AbortController();
    const conversationA = await engines.llm.openConversation();
    const conversationB = await engines.llm.openConversation();

    // A holds every engine; B's work queues behind it; A's next work queues behind B's.
    const a1 = [engines.asr.transcribe(new Float32Array(1_000), { signal: a.signal }), drain(conversationA.respond('a1', { signal: a.signal })), drain(speakText(engines.tts, 'a1 speech', { signal: a.signal }))];
    const b1 = [
      engines.asr.transcribe(new Float32Array(2_000), { signal: b.signal }),
      drain(conversationB.respond('b1', { signal: b.signal })),
      drain(speakText(engines.tts, 'b1 speech', { signal: b.signal })),
    ];
    const a2Asr = engines.asr.transcribe(new Float32Array(1_001), { signal: a.signal });
    const a2Llm = conversationA.respond('a2', { signal: a.signal });
    const a2Tts = speakText(engines.tts, 'a2 speech', { signal: a.signal });
    const a2 = [a2Asr, drain(a2Llm), drain(a2Tts)];
    await settle();
    expect(scheduler.load()).toMatchObject({ asr: { active: 1, waiting: 2 }, llm: { active: 1, waiting: 2 }, tts: { active: 1, waiting: 2 } });

    b.abort(new Error('the client left'));
    // Every queued piece of B's work is gone at once.
    expect(scheduler.load()).toMatchObject({ asr: { waiting: 1 }, llm: { waiting: 1 }, tts: { waiting: 1 } });
    await expect(b1[0]).rejects.toThrow('the client left');
    expect(await b1[1]).toBe(0);
    expect(await b1[2]).toBe(0);
    await Promise.all([...a1, ...a2]);

    // B's work never reached an engine.
    expect(asr.calls.map((c) => c.samples)).toEqual([1_000, 1_001]);
    expect(llm.calls.filter((c) => c.text === 'b1').every((c) => !c.ran)).toBe(true);
    expect(llm.calls.filter((c) => c.ran).map((c) => c.text)).toEqual(['a1', 'a2']);
    expect(tts.calls.map((c) => c.text)).toEqual(['a1 speech', 'a2 speech']);
    expect(scheduler.asr.stats.dropped + scheduler.llm.stats.dropped + scheduler.tts.stats.dropped).toBe(3);

    // A's next work took the slot A's first work freed (B's, dropped, never stood in between): in order,
    // and having waited for it.
    const [llmA1, llmA2] = llm.calls.filter((c) => c.ran);
    expect(llmA2!.startedAt!).toBeGreaterThanOrEqual(llmA1!.endedAt!);
    const [ttsA1, ttsA2] = tts.calls;
    expect(ttsA2!.startedAt!).toBeGreaterThanOrEqual(ttsA1!.endedAt!);
    const a2Transcript = await a2Asr;
    expect(a2Transcript.waitMs).toBeGreaterThan(0);
    expect(conversationA.lastStats?.waitMs).toBeGreaterThan(0);
  });

  it('an answer cut by barge-in while it waits for the LLM and the TTS: neither runs it; the conversation is answered again at once', async () => {
    const { llm, tts, engines } = sharedEngines();
    const session = new AbortController();
    const other = new AbortController();
    const busy = await engines.llm.openConversation();
    const conversation = await engines.llm.openConversation();
    // Another conversation is answering: the LLM and the TTS are taken.
    const otherWork = [drain(busy.respond('other', { signal: other.signal })), drain(speakText(engines.tts, 'other speech', { signal: other.signal }))];

    const cut = new AbortController();
    const answer = respond(conversation, engines.tts, 'question', { signal: AbortSignal.any([session.signal, cut.signal]) });
    const heard = drain(answer.items);
    await settle();
    cut.abort(new Error('barge-in'));
    expect(await heard).toBe(0);
    await answer.done;

    // The user's next question, on the same conversation and session.
    const next = respond(conversation, engines.tts, 'next question', { signal: session.signal });
    expect(await drain(next.items)).toBeGreaterThan(0);
    await Promise.all(otherWork);

    expect(llm.calls.filter((c) => c.text === 'question').every((c) => !c.ran)).toBe(true);
    expect(llm.calls.find((c) => c.text === 'next question')?.ran).toBe(true);
    expect(tts.calls.map((c) => c.text).filter((t) => t.startsWith('question'))).toEqual([]);
    expect(tts.calls.some((c) => c.text.startsWith('next question'))).toBe(true);
    // The cut answer waited (its wait is reported), and added nothing to anyone's.
    expect(next.timings.llm?.waitMs).toBeDefined();
  });

  it('confirmed work goes before speculative work, and a promoted speculative answer moves up', async () => {
    const { tts, engines } = sharedEngines();
    const signal = new AbortController().signal;
    const first = drain(speakText(engines.tts, 'first', { signal }));
    await settle(5);
    const speculative = drain(speakText(engines.tts, 'speculative', { signal, priority: 'speculative' }));
    const preemptive = speakText(engines.tts, 'promoted', { signal, priority: 'speculative' });
    const promoted = drain(preemptive);
    const confirmed = drain(speakText(engines.tts, 'confirmed', { signal }));
    // Its turn was confirmed while it waited: ahead of the speculative work, behind confirmed work asked for earlier.
    preemptive.promote();
    await Promise.all([first, speculative, promoted, confirmed]);
    expect(tts.calls.filter((c) => c.ran).sort((x, y) => x.startedAt! - y.startedAt!).map((c) => c.text)).toEqual(['first', 'promoted', 'confirmed', 'speculative']);
  });
});
