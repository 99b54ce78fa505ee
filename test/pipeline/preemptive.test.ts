/**
 * Preemptive responses: the answer starts on the speculative transcript and is held; speech that
 * resumes, or a confirmed transcript that reads differently, throws it away without a trace (no
 * text or audio reaches the reader, the history holds one user turn) and the answer restarts.
 * Unit level with LLM and TTS doubles, then a whole turn job on real Silero VAD and espeak-ng speech.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createHandlerFor, type S2sHandler } from '../../handler/s2s-handler.js';
import type { WorkerJob } from '../../handler/runtime/types.js';
import { Logger } from '../../src/log/logger.js';
import { PreemptiveResponder, type PreemptionMode } from '../../src/pipeline/preemptive.js';
import type { Response } from '../../src/pipeline/respond.js';
import { ScriptedAsrDouble } from '../doubles/scripted-asr-double.js';
import { ScriptedLlmDouble, type ScriptedConversationDouble } from '../doubles/scripted-llm-double.js';
import { ToneTtsDouble } from '../doubles/tone-tts-double.js';
import { makeUtterance, wavOf } from '../fixtures/speech.js';
import { waitFor } from '../helpers/harness.js';
import { testProfileHandler } from '../helpers/test-profile.js';

const answerTo = (text: string) => `You said ${text.replace(/[?.!]$/, '')}. Here is my answer.`;

async function setup(mode: PreemptionMode = 'full') {
  const llm = new ScriptedLlmDouble({ replies: [], replyTo: answerTo, delayMs: 2 });
  const conversation = (await llm.openConversation()) as ScriptedConversationDouble;
  const tts = new ToneTtsDouble();
  const preemption = new PreemptiveResponder(conversation, tts, mode, () => ({}), new AbortController().signal);
  return { conversation, tts, preemption };
}

async function read(response: Response) {
  let text = '';
  let audio = 0;
  for await (const item of response.items) {
    if (item.kind === 'text') text += item.delta;
    else if (item.kind === 'audio') audio += item.pcm.length;
  }
  return { text, audio };
}

const settle = (ms = 30) => new Promise((resolve) => setTimeout(resolve, ms));

describe('PreemptiveResponder', () => {
  it('plays the held answer when the turn is confirmed with the same transcript', async () => {
    const { conversation, tts, preemption } = await setup();
    preemption.start('What time is it?');
    // Started before the turn closed: the LLM's text streams into a speculative TTS stream while nothing is read yet.
    await waitFor(() => (tts.streams[0]?.text.length ?? 0) > 0);
    expect(tts.streams[0]).toMatchObject({ priority: 'speculative', promoted: false });
    const taken = await preemption.take('What time is it?', new AbortController().signal);
    expect(taken.preemptive).toBe(true);
    // Confirmed: the held stream is promoted, not opened again.
    expect(tts.streams).toHaveLength(1);
    expect(tts.streams[0]!.promoted).toBe(true);
    expect(await read(taken.response)).toEqual({ text: answerTo('What time is it?'), audio: expect.any(Number) });
    expect(conversation.history).toEqual([
      { role: 'user', content: 'What time is it?' },
      { role: 'assistant', content: answerTo('What time is it?') },
    ]);
  });

  it('restarts on a changed transcript: the held answer is discarded, counted as wasted and leaves no trace', async () => {
    const { conversation, tts, preemption } = await setup();
    preemption.start('What time is it');
    await settle();
    const taken = await preemption.take('What time is it in Paris?', new AbortController().signal);
    expect(taken.preemptive).toBe('discarded');
    expect(taken.wastedTokens).toBeGreaterThan(0);
    const { text } = await read(taken.response);
    expect(text).toBe(answerTo('What time is it in Paris?'));
    expect(conversation.history).toEqual([
      { role: 'user', content: 'What time is it in Paris?' },
      { role: 'assistant', content: answerTo('What time is it in Paris?') },
    ]);
    expect(preemption.wastedTokens).toBe(taken.wastedTokens);
    // The discarded answer's speculative stream was cancelled; the new one is confirmed from the start.
    expect(tts.streams.map((s) => [s.priority, s.aborted])).toEqual([
      ['speculative', true],
      ['confirmed', false],
    ]);
  });

  it('speech resuming discards the held answer; the next speculation starts afresh', async () => {
    const { conversation, preemption } = await setup();
    preemption.start('Book a table for');
    await settle();
    preemption.discard();
    preemption.start('Book a table for two.');
    const taken = await preemption.take('Book a table for two.', new AbortController().signal);
    expect(taken.preemptive).toBe(true);
    expect(taken.wastedTokens).toBeGreaterThan(0);
    expect((await read(taken.response)).text).toBe(answerTo('Book a table for two.'));
    expect(conversation.history.filter((m) => m.role === 'user')).toEqual([{ role: 'user', content: 'Book a table for two.' }]);
  });

  it('llm mode runs only the LLM early: the TTS waits for the confirmed turn', async () => {
    const { tts, preemption } = await setup('llm');
    preemption.start('Hello there.');
    await settle(80);
    expect(tts.streams).toEqual([]);
    const taken = await preemption.take('Hello there.', new AbortController().signal);
    expect(taken.preemptive).toBe(true);
    const { audio } = await read(taken.response);
    expect(audio).toBeGreaterThan(0);
  });

  it('off starts nothing early', async () => {
    const { tts, preemption } = await setup('off');
    preemption.start('Hello there.');
    await settle();
    expect(tts.streams).toEqual([]);
    const taken = await preemption.take('Hello there.', new AbortController().signal);
    expect(taken.preemptive).toBe(false);
    expect((await read(taken.response)).text).toBe(answerTo('Hello there.'));
  });
});

describe('preemptive response in a turn job (real VAD on espeak-ng speech)', () => {
  const log = new Logger({ level: 'ERROR', jsonLines: true, write: () => undefined });
  const job = (input: unknown): WorkerJob => ({ id: 'test-job', input, log, progress: async () => undefined });
  let real: S2sHandler;
  let paused: string;
  let twoParts: string;
  let plain: string;

  beforeAll(async () => {
    real = await testProfileHandler();
    // A pause shorter than the endpoint after "and" (900 ms), inside one question.
    paused = wavOf((await makeUtterance([{ silenceMs: 300 }, { say: 'What time is it' }, { silenceMs: 400 }, { say: 'in Paris' }, { silenceMs: 1200 }])).samples, 16_000).toString('base64');
    // A pause longer than the endpoint after a finished question (200 ms): a second segment of the same turn.
    twoParts = wavOf((await makeUtterance([{ silenceMs: 300 }, { say: 'What time is it' }, { silenceMs: 800 }, { say: 'in Paris' }, { silenceMs: 1200 }])).samples, 16_000).toString('base64');
    plain = wavOf((await makeUtterance([{ silenceMs: 300 }, { say: 'What time is it' }, { silenceMs: 1200 }])).samples, 16_000).toString('base64');
    return () => real.dispose();
  }, 60_000);

  async function run(audio: string, asr: ScriptedAsrDouble) {
    const llm = new ScriptedLlmDouble({ replies: [], replyTo: answerTo, delayMs: 2 });
    const handler = createHandlerFor({ ...real.engines, asr, llm }, real.config, log);
    const events: { type: string; [k: string]: unknown }[] = [];
    for await (const event of handler.handle(job({ audio }), new AbortController().signal)) events.push(event as { type: string });
    return { events, history: llm.conversations[0]!.history, text: events.filter((e) => e.type === 'text').map((e) => e['delta']).join('') };
  }

  const upToPause = (first: string) => new ScriptedAsrDouble({ text: (samples) => (samples.length < 16_000 * 1.6 ? first : 'What time is it in Paris?') });

  it('a pause shorter than the endpoint: nothing is answered until the turn closes, history holds one user turn', async () => {
    // Whatever ends before the pause reads "What time is it and"; the whole turn reads the full question.
    const asr = upToPause('What time is it and');
    const { events, history, text } = await run(paused, asr);
    expect(asr.calls.map((c) => c.text)).toContain('What time is it and');
    expect(events.find((e) => e.type === 'transcript')!['text']).toBe('What time is it in Paris?');
    expect(text).toBe(answerTo('What time is it in Paris?'));
    expect(history).toEqual([
      { role: 'user', content: 'What time is it in Paris?' },
      { role: 'assistant', content: answerTo('What time is it in Paris?') },
    ]);
    const metrics = events.find((e) => e.type === 'metrics')!;
    // A turn job starts the answer when a segment closes (its audio is all there): the pause closed
    // nothing, so nothing was thrown away, and the answer played is the one started at "in Paris".
    expect(metrics['preemptive']).toBe(true);
    expect(metrics['llm_tokens_wasted']).toBe(0);
    const done = events.find((e) => e.type === 'done')!;
    expect(done['llm_tokens_wasted']).toBe(metrics['llm_tokens_wasted']);
    expect(done['llm_tokens_out']).toBe(metrics['llm_tokens_out']);
  }, 60_000);

  it('a transcript that changes after the answer started (a second segment) restarts the answer', async () => {
    const asr = upToPause('What time is it?');
    const { events, history, text } = await run(twoParts, asr);
    expect(events.filter((e) => e.type === 'vad')).toHaveLength(2);
    expect(text).toBe(answerTo('What time is it in Paris?'));
    expect(history.filter((m) => m.role === 'user')).toEqual([{ role: 'user', content: 'What time is it in Paris?' }]);
    const metrics = events.find((e) => e.type === 'metrics')!;
    // The first answer was thrown away when speech resumed; the second segment's speculation heard the
    // joined turn (both segments), so the answer restarted on it when that segment closed, and the
    // turn's transcript is that speculation (no second decode of the same audio).
    expect(metrics['preemptive']).toBe(true);
    expect(asr.calls.filter((c) => c.text === 'What time is it in Paris?')).toHaveLength(1);
    expect(metrics['llm_tokens_wasted'] as number).toBeGreaterThan(0);
  }, 60_000);

  it('a clean question: the answer played is the one started during the endpoint wait', async () => {
    const { events, text } = await run(plain, new ScriptedAsrDouble({ text: 'What time is it?' }));
    expect(text).toBe(answerTo('What time is it?'));
    const metrics = events.find((e) => e.type === 'metrics')!;
    expect(metrics['preemptive']).toBe(true);
    expect(events.filter((e) => e.type === 'audio').length).toBeGreaterThan(0);
  }, 60_000);
});
