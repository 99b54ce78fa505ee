/**
 * The session core under both wire protocols, driven directly: the real VAD, ASR and TTS sidecar of
 * the test profile, and a scripted LLM double so the words of the answer are known. An answer cut
 * by the user enters the model's history only as far as it was played; a truncate cuts by audio time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sessionOptions } from '../../handler/session-job.js';
import type { S2sHandler } from '../../handler/s2s-handler.js';
import { float32ToPcm16 } from '../../src/audio/pcm.js';
import { Logger } from '../../src/log/logger.js';
import { SessionCore, type CoreEvent, type SessionSummary } from '../../src/session/session-core.js';
import { ScriptedConversationDouble, type ScriptedLlmOptions } from '../doubles/scripted-llm-double.js';
import { makeUtterance, type Utterance } from '../fixtures/speech.js';
import { testProfileHandler } from '../helpers/test-profile.js';

const SCRIPT = 'The first sentence is here. The second sentence follows it now. The third sentence is a longer one than that. The fourth one ends it all.';
let handler: S2sHandler;
let question: Utterance;
let interruption: Utterance;
const quiet = new Logger({ level: 'ERROR', jsonLines: true, write: () => undefined });

beforeAll(async () => {
  handler = await testProfileHandler({ S2S_MIN_INTERRUPTION_MS: '400' });
  question = await makeUtterance([{ silenceMs: 300 }, { say: 'What is the capital of France?' }, { silenceMs: 600 }]);
  interruption = await makeUtterance([{ say: 'Wait, wait, I have another question for you.' }, { silenceMs: 600 }]);
}, 60_000);
afterAll(async () => {
  await handler?.dispose();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function openCore(script: ScriptedLlmOptions = { replies: [SCRIPT, 'Yes.'] }): {
  core: SessionCore;
  conversation: ScriptedConversationDouble;
  events: CoreEvent[];
  audio: () => number;
  ended: Promise<SessionSummary>;
} {
  const conversation = new ScriptedConversationDouble(script, [], undefined);
  const events: CoreEvent[] = [];
  let samples = 0;
  const options = sessionOptions(handler.config, {}, handler.engines.tts.voices);
  const core = new SessionCore(handler.engines, conversation, options, quiet, { event: (e) => events.push(e), audio: (pcm) => (samples += pcm.length), ended: () => undefined }, new AbortController().signal);
  return { core, conversation, events, audio: () => samples, ended: core.run() };
}

async function feed(core: SessionCore, utterance: Utterance, realtime = false): Promise<void> {
  const frame = 1_600; // 100 ms
  for (let at = 0; at < utterance.samples.length; at += frame) {
    core.pushAudio(float32ToPcm16(utterance.samples.subarray(at, at + frame)));
    if (realtime) await sleep(100);
  }
}

async function until(probe: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const doneEvents = (events: CoreEvent[]) => events.filter((e): e is Extract<CoreEvent, { type: 'answer_done' }> => e.type === 'answer_done');

describe('session core', () => {
  it('an interrupted answer enters the history as far as it was played, not as far as it was generated', async () => {
    const { core, conversation, events, audio } = openCore();
    await feed(core, question);
    await until(() => audio() > 0, 'the first audio');
    await sleep(500);
    await feed(core, interruption, true);
    await until(() => doneEvents(events).length >= 2, 'the second answer');
    const [cut, next] = doneEvents(events);
    expect(cut!.status).toBe('interrupted');
    expect(next!.status).toBe('completed');
    // The model generated all of it (the double streams fast), but the listener heard only the start.
    const heard = cut!.item.text!;
    // Half a second and more of it was played before the cut: some words, not all.
    expect(heard).not.toBe('');
    expect(heard.length).toBeLessThan(SCRIPT.length);
    expect(SCRIPT.startsWith(heard)).toBe(true);
    expect(cut!.item.status).toBe('incomplete');
    // The history the model answered the next turn from holds exactly the heard part.
    const history = conversation.history.map((m) => [m.role, m.content]);
    expect(history).toEqual([
      ['user', 'hello world'],
      ['assistant', heard],
      ['user', 'hello world'],
      ['assistant', 'Yes.'],
    ]);
    core.end('client_end');
  }, 60_000);

  it('truncate cuts an answer by audio time, clamped to the audio that exists, and the next answer sees the cut', async () => {
    const { core, conversation, events } = openCore();
    core.addItem({ role: 'user', text: 'Tell me.' });
    core.requestAnswer();
    await until(() => doneEvents(events).length === 1, 'the answer');
    const answer = doneEvents(events)[0]!.item;
    expect(answer.text).toBe(SCRIPT);
    expect(core.truncateItem(answer.id, 10_000_000)).toBeCloseTo(answer.audioMs, 3);
    expect(core.items.find((i) => i.id === answer.id)!.text).toBe(SCRIPT);
    expect(core.truncateItem(answer.id, 0)).toBe(0);
    expect(core.items.find((i) => i.id === answer.id)!.text).toBe('');
    expect(core.truncateItem('no-such-item', 5)).toBeNull();
    core.addItem({ role: 'user', text: 'And?' });
    core.requestAnswer({ speak: false });
    await until(() => doneEvents(events).length === 2, 'the second answer');
    // An answer cut to nothing leaves the model's context; a text-only answer asked nothing of the TTS.
    expect(conversation.history.map((m) => m.content)).toEqual(['Tell me.', 'And?', 'Yes.']);
    expect(doneEvents(events)[1]!.item).toMatchObject({ modality: 'text', audioMs: 0, text: 'Yes.' });
    core.end('client_end');
  }, 60_000);

  it('an answer cancelled before its first word still has its message, empty and incomplete, so the response closes an item', async () => {
    const { core, events } = openCore({ replies: ['Too late.'], firstDeltaDelayMs: 1_000 });
    core.addItem({ role: 'user', text: 'Tell me.' });
    const answerId = core.requestAnswer();
    await until(() => events.some((e) => e.type === 'answer_start'), 'the answer to start');
    expect(core.cancelAnswer()).toBe(true);
    await until(() => doneEvents(events).length === 1, 'the answer to end');
    const own = events.filter((e) => 'answerId' in e && e.answerId === answerId).map((e) => e.type);
    expect(own).toEqual(['answer_start', 'answer_message', 'answer_done']);
    const done = doneEvents(events)[0]!;
    expect(done).toMatchObject({ status: 'cancelled', item: { role: 'assistant', text: '', status: 'incomplete' } });
    expect(core.items.map((i) => [i.role, i.text, i.status])).toEqual([
      ['user', 'Tell me.', 'completed'],
      ['assistant', '', 'incomplete'],
    ]);
    core.end('client_end');
  }, 60_000);
});
