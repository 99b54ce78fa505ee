/**
 * The endpointer's one decision from the transcript cue and the turn model's verdict, on real Silero
 * VAD and espeak-ng speech, with a scripted turn model double (the verdicts) and an ASR double (the
 * words). Turn jobs' feeding awaits both, so every position here is audio time, never wall time.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { listenForTurn } from '../../src/pipeline/listen.js';
import { Endpointer, endpointerOptions, fusedEndpointMs, type EndpointerOptions, type VadEvent } from '../../src/vad/endpointer.js';
import { BUNDLED_SILERO_V5, SileroVadModel, VAD_FRAME_SAMPLES, VAD_SAMPLE_RATE, bundledSileroPath } from '../../src/vad/silero-model.js';
import { ScriptedAsrDouble } from '../doubles/scripted-asr-double.js';
import { ScriptedTurnModelDouble, trailingSilenceMs } from '../doubles/scripted-turn-model-double.js';
import { makeUtterance, type Utterance } from '../fixtures/speech.js';

const FRAME_MS = (VAD_FRAME_SAMPLES * 1000) / VAD_SAMPLE_RATE;

let silero: SileroVadModel;
let speech: Utterance;

beforeAll(async () => {
  silero = await SileroVadModel.load({ path: bundledSileroPath(), sha256: BUNDLED_SILERO_V5.sha256 });
  speech = await makeUtterance([{ silenceMs: 300 }, { say: 'What time is it' }, { silenceMs: 2000 }]);
});

/** One turn job over the utterance: the closing silence and what decided it. */
async function turnWith(model: ScriptedTurnModelDouble | null, transcript: string, overrides: Partial<EndpointerOptions> = {}) {
  const endpointer = new Endpointer(silero, endpointerOptions({ turnRecheckMs: 0, ...overrides }), model);
  const heard = await listenForTurn(endpointer, new ScriptedAsrDouble({ text: transcript }), speech.samples, new AbortController().signal);
  expect(heard).not.toBeNull();
  return heard!;
}

/** The silence waited, rounded up to whole VAD frames, as the endpointer counts it. */
const frames = (ms: number) => Math.ceil(ms / FRAME_MS) * FRAME_MS;

describe('fused endpoint: transcript cue and turn model', () => {
  it('moves the endpoint within the cue range by the verdict', () => {
    const options = endpointerOptions({ endpointMs: 400, minEndpointMs: 200, maxEndpointMs: 900, turnIncompleteMs: 1500 });
    const complete = { probability: 0.9, complete: true };
    const incomplete = { probability: 0.1, complete: false };
    const table = (['sentence_end', 'none', null, 'continuation'] as const).map((cue) => [fusedEndpointMs(cue, complete, options), fusedEndpointMs(cue, incomplete, options), fusedEndpointMs(cue, null, options)]);
    expect(table).toEqual([
      [200, 400, 200],
      [400, 1500, 400],
      [200, 1500, 400],
      [900, 1500, 900],
    ]);
    // A fixed endpoint stays fixed.
    expect(fusedEndpointMs('none', complete, { ...options, adaptive: false })).toBe(400);
  });

  it('closes after the short silence when the model says complete and the words end a sentence', async () => {
    const model = new ScriptedTurnModelDouble(0.9);
    const heard = await turnWith(model, 'What time is it?');
    expect(heard.endpointMs).toBe(frames(200));
    expect(heard.turn).toMatchObject({ decidedBy: 'model', verdict: 'complete', probability: 0.9, runs: 1, failed: false });
    // The model heard the turn so far: its whole speech, then the first silent frame.
    const { startMs, endMs } = speech.truth[0]!;
    expect(model.audioLengths.at(-1)!).toBeGreaterThan((endMs - startMs) * 16);
    expect(model.audioLengths.at(-1)!).toBeLessThan((endMs - startMs + 200 + 200) * 16);
  });

  it('a complete verdict on words that just stop (no full stop) keeps the base wait; before any words it closes early', async () => {
    const stopped = await turnWith(new ScriptedTurnModelDouble(0.9), 'What time is it');
    expect(stopped.endpointMs).toBe(frames(400));
    expect(stopped.turn).toMatchObject({ decidedBy: 'model', verdict: 'complete' });
    // Live feeding with no transcript (the ASR slower than the model): the verdict alone shortens the wait.
    const endpointer = new Endpointer(silero, endpointerOptions({ turnRecheckMs: 0 }), new ScriptedTurnModelDouble(0.9));
    const events: VadEvent[] = [];
    for (let at = 0; at < speech.samples.length; at += 512) events.push(...(await endpointer.push(speech.samples.subarray(at, at + 512))));
    const end = events.find((e) => e.type === 'speech_end');
    expect(end?.type === 'speech_end' && end.endpointMs).toBe(200);
  });

  it('waits the incomplete silence when the model says incomplete', async () => {
    const heard = await turnWith(new ScriptedTurnModelDouble(0.2), 'What time is it', { turnIncompleteMs: 1000 });
    expect(heard.endpointMs).toBe(frames(1000));
    expect(heard.turn).toMatchObject({ decidedBy: 'model', verdict: 'incomplete', probability: 0.2 });
  });

  it('re-checks as the silence grows and closes when a later verdict says complete', async () => {
    // Incomplete until the model hears 250 ms of silence after the speech.
    const model = new ScriptedTurnModelDouble((audio) => (trailingSilenceMs(audio) >= 250 ? 0.8 : 0.1));
    const heard = await turnWith(model, 'What time is it?', { turnRecheckMs: 100, turnIncompleteMs: 1500 });
    // Runs at the first silent frame (Silero releases some tens of ms after the speech), then every
    // 100 ms of silence, until one hears enough of it.
    expect(heard.turn).toMatchObject({ decidedBy: 'model', verdict: 'complete' });
    expect(heard.turn!.runs).toBeGreaterThanOrEqual(2);
    const lastRuns = model.audioLengths.slice(-heard.turn!.runs);
    lastRuns.slice(1).forEach((length, i) => expect(length - lastRuns[i]!).toBeGreaterThanOrEqual(100 * 16));
    expect(heard.endpointMs).toBeGreaterThan(200);
    expect(heard.endpointMs).toBeLessThanOrEqual(400);
  });

  it('a threshold moves the verdict', async () => {
    const strict = await turnWith(new ScriptedTurnModelDouble(0.6), 'What time is it', { turnThreshold: 0.7, turnIncompleteMs: 800 });
    expect(strict.turn).toMatchObject({ verdict: 'incomplete' });
    expect(strict.endpointMs).toBe(frames(800));
  });

  it('never shortens the wait after a dangling connector, and lengthens a finished sentence the model doubts', async () => {
    const dangling = await turnWith(new ScriptedTurnModelDouble(0.95), 'What time is it and');
    expect(dangling.endpointMs).toBe(frames(900));
    const doubted = await turnWith(new ScriptedTurnModelDouble(0.05), 'What time is it?');
    expect(doubted.endpointMs).toBe(frames(400));
  });

  it('falls back to the transcript cue when the model fails, and says so', async () => {
    const heard = await turnWith(new ScriptedTurnModelDouble('fail'), 'What time is it?');
    expect(heard.endpointMs).toBe(frames(200));
    expect(heard.turn).toMatchObject({ decidedBy: 'transcript', verdict: null, probability: null, failed: true });
  });

  it('is not consulted when turned off or when the endpoint is fixed', async () => {
    for (const overrides of [{ turnModel: false }, { adaptive: false }]) {
      const model = new ScriptedTurnModelDouble(0.9);
      const heard = await turnWith(model, 'What time is it?', overrides);
      expect(model.runs).toBe(0);
      expect(heard.turn?.verdict).toBeNull();
    }
  });

  it('does not wait for a model slower than the endpoint (live feeding)', async () => {
    const model = new ScriptedTurnModelDouble(0.9, Infinity);
    const endpointer = new Endpointer(silero, endpointerOptions({}), model);
    const events: VadEvent[] = [];
    for (let at = 0; at < speech.samples.length; at += 512) events.push(...(await endpointer.push(speech.samples.subarray(at, at + 512))));
    const end = events.find((e) => e.type === 'speech_end');
    expect(end?.type === 'speech_end' && end.endpointMs).toBe(400);
    expect(end?.type === 'speech_end' && end.turn).toMatchObject({ decidedBy: 'silence', verdict: null, runs: 1 });
  });

  it('a turn job cut at a long pause: the model then hears the whole joined turn, and the cue reads all its words', async () => {
    const paused = await makeUtterance([{ silenceMs: 300 }, { say: 'I want to book a flight' }, { silenceMs: 1200 }, { say: 'to Paris' }, { silenceMs: 2000 }]);
    // Complete on the first silence (so the pause closes a segment), incomplete on the second, so the
    // second segment closes only after the incomplete wait.
    const model: ScriptedTurnModelDouble = new ScriptedTurnModelDouble((): number => (model.runs === 0 ? 0.9 : 0.2));
    // The first segment alone is under 1.9 s of audio (pre-roll included); both joined are more.
    const asr = new ScriptedAsrDouble({ text: (samples) => (samples.length < 16 * 1900 ? 'I want to book a flight' : 'I want to book a flight to Paris') });
    const endpointer = new Endpointer(silero, endpointerOptions({ turnRecheckMs: 0, turnIncompleteMs: 1000 }), model);
    const heard = await listenForTurn(endpointer, asr, paused.samples, new AbortController().signal);
    expect(heard!.segments).toHaveLength(2);
    // Before the fix the second verdict heard "to Paris" alone: now it hears from the first segment on.
    const [first, second] = paused.truth;
    expect(model.audioLengths.at(-1)!).toBeGreaterThan((second!.endMs - first!.startMs) * 16);
    // The second silence's speculation transcribed the joined audio (the cue read the whole turn), and
    // that speculation is the turn's transcript: no further decode.
    expect(asr.calls).toHaveLength(2);
    expect(asr.calls[1]!.samples).toBeGreaterThan((second!.endMs - second!.startMs + first!.endMs - first!.startMs) * 16);
    expect(heard!.transcript).toBe('I want to book a flight to Paris');
    expect(heard!.asrSpeculative).toBe(true);
    expect(heard!.endpointMs).toBe(frames(1000));
  });
});
