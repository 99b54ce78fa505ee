/**
 * The turn listener's speculative ASR, on real Silero VAD and espeak-ng speech with an ASR double
 * that records its calls: a speculation is cancelled when speech resumes, and at most one decode
 * runs at a time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TurnListener, type ListenEvent } from '../../src/pipeline/listen.js';
import { loadSileroVad, type Vad } from '../../src/vad/vad.js';
import { RecordingAsrDouble } from '../doubles/recording-asr-double.js';
import { makeUtterance, type Utterance } from '../fixtures/speech.js';

let vad: Vad;
let paused: Utterance;
beforeAll(async () => {
  vad = await loadSileroVad();
  // The 120 ms pause is shorter than the endpoint: silence starts, then speech resumes.
  paused = await makeUtterance([{ silenceMs: 500 }, { say: 'One two three.' }, { silenceMs: 120 }, { say: 'Four five six.' }, { silenceMs: 800 }]);
});
afterAll(async () => {
  await vad?.dispose();
});

describe('turn listener', () => {
  it('cancels a speculative decode when speech resumes, and runs at most one decode at a time', async () => {
    // Decodes far slower than the audio is pushed: without cancelling, every pause would start one more.
    const asr = new RecordingAsrDouble(1_000);
    const listener = new TurnListener(vad.openStream({ endpointMs: 400 }), asr, new AbortController().signal, { joinSegments: false });
    const events: ListenEvent[] = [];
    for (let at = 0; at < paused.samples.length; at += 3200) events.push(...(await listener.push(paused.samples.subarray(at, at + 3200))));
    const types = events.map((e) => e.type);
    expect(types).toContain('speech_resumed');
    expect(types.filter((t) => t === 'turn')).toHaveLength(1);
    const turn = events.find((e) => e.type === 'turn');
    const heard = await (turn as Extract<ListenEvent, { type: 'turn' }>).heard;
    expect(heard.transcript).toBe('one two three four five six');
    expect(heard.asrSpeculative).toBe(true);
    // Every speculation but the last (the one the turn used) was cancelled.
    expect(asr.calls.length).toBeGreaterThan(1);
    expect(asr.calls.slice(0, -1).every((call) => call.signal?.aborted)).toBe(true);
    expect(asr.calls.at(-1)!.signal?.aborted).toBe(false);
    expect(asr.maxInFlight).toBe(1);
  });
});
