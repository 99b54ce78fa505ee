/**
 * Adaptive endpointing on real Silero VAD and espeak-ng speech, with an ASR double for the exact
 * words: the same audio closes sooner when its speculative transcript is a finished question than
 * when it ends on "and". Positions are audio time (samples), never wall-clock time.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { listenForTurn } from '../../src/pipeline/listen.js';
import { adaptiveEndpointMs, endpointCue, endpointerOptions } from '../../src/vad/endpointer.js';
import { VAD_FRAME_SAMPLES, VAD_SAMPLE_RATE } from '../../src/vad/silero-model.js';
import { loadSileroVad, type Vad } from '../../src/vad/vad.js';
import { ScriptedAsrDouble } from '../doubles/scripted-asr-double.js';
import { makeUtterance, type Utterance } from '../fixtures/speech.js';

const VAD_FRAME_MS = (VAD_FRAME_SAMPLES * 1000) / VAD_SAMPLE_RATE;

let vad: Vad;
let speech: Utterance;

beforeAll(async () => {
  vad = await loadSileroVad();
  speech = await makeUtterance([{ silenceMs: 300 }, { say: 'What time is it' }, { silenceMs: 1500 }]);
});

/** The silence a turn waited, in whole 32 ms Silero frames of its audio. */
const frames = (heard: { endpointMs: number }) => heard.endpointMs / VAD_FRAME_MS;

async function endpointAfter(transcript: string, overrides = {}) {
  const asr = new ScriptedAsrDouble({ text: transcript });
  const heard = await listenForTurn(vad.openStream(overrides), asr, speech.samples, new AbortController().signal);
  expect(heard).not.toBeNull();
  return heard!;
}

describe('adaptive endpointing', () => {
  it('reads the cue at the end of a transcript', () => {
    expect(['What time is it?', 'Book it.', 'Great!', 'He said "yes."'].map(endpointCue)).toEqual(['sentence_end', 'sentence_end', 'sentence_end', 'sentence_end']);
    expect(['I went to the shop and', 'So, um', 'Give me the', 'First,', 'well...', 'and then uh'].map(endpointCue)).toEqual(Array(6).fill('continuation'));
    expect(['I need to call my sister', '', '   '].map(endpointCue)).toEqual(['none', 'none', 'none']);
    const options = endpointerOptions({ endpointMs: 400, minEndpointMs: 200, maxEndpointMs: 900 });
    expect(adaptiveEndpointMs('Why?', options)).toBe(200);
    expect(adaptiveEndpointMs('and', options)).toBe(900);
    expect(adaptiveEndpointMs('my sister', options)).toBe(400);
    expect(adaptiveEndpointMs('Why?', { ...options, adaptive: false })).toBe(400);
    // The bounds never cross the base.
    expect(adaptiveEndpointMs('Why?', { ...options, endpointMs: 100 })).toBe(100);
  });

  it('closes sooner after a question than after "and" (same audio, counted in VAD frames)', async () => {
    const question = await endpointAfter('What time is it?');
    const dangling = await endpointAfter('What time is it and');
    const neutral = await endpointAfter('What time is it');
    expect(question.transcript).toBe('What time is it?');
    // Same speech found each time; only the silence waited differs. The silence is counted in
    // whole VAD frames of the audio (listen.ts: samples from the end of speech to the turn
    // closing), not on a clock, so these counts are exact on any machine.
    expect(question.segments).toEqual(dangling.segments);
    expect(frames(question)).toBeLessThan(frames(neutral));
    expect(frames(neutral)).toBeLessThan(frames(dangling));
    // Each waited its configured silence, rounded up to whole frames.
    const defaults = endpointerOptions();
    expect([question, neutral, dangling].map(frames)).toEqual([defaults.minEndpointMs, defaults.endpointMs, defaults.maxEndpointMs].map((ms) => Math.ceil(ms / VAD_FRAME_MS)));
  });

  it('with adaptive endpointing off, every transcript waits the same fixed silence', async () => {
    const question = await endpointAfter('What time is it?', { adaptive: false, endpointMs: 250 });
    const dangling = await endpointAfter('What time is it and', { adaptive: false, endpointMs: 250 });
    expect(frames(question)).toBe(frames(dangling));
    expect(frames(question)).toBe(Math.ceil(250 / VAD_FRAME_MS));
  });
});
