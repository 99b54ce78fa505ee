/** The Realtime adapter's pure mappings: turn detection onto the endpointer, voice names onto presets, G.711 both ways. */
import { describe, expect, it } from 'vitest';
import { InputAudio, OutputAudio } from '../../src/session/realtime/audio-codec.js';
import { coreTurnDetection } from '../../src/session/realtime/realtime-mappings.js';
import { OPENAI_VOICES, resolveVoice } from '../../src/session/realtime/voices.js';

describe('turn detection mapping', () => {
  const base = { endpointMs: 400, minEndpointMs: 200, maxEndpointMs: 900, turnThreshold: 0.5, turnIncompleteMs: 1500 };
  it('server_vad numbers go to the endpointer (a given silence is fixed, not adaptive); the switches default to on', () => {
    expect(coreTurnDetection({ type: 'server_vad', threshold: 0.6, prefix_padding_ms: 300, silence_duration_ms: 500 }, base)).toEqual({
      mode: 'vad',
      vad: { activationThreshold: 0.6, releaseThreshold: 0.45, preRollMs: 300, endpointMs: 500, adaptive: false },
      createResponse: true,
      interruptResponse: true,
    });
    expect(coreTurnDetection({ type: 'server_vad', create_response: false, interrupt_response: false }, base)).toMatchObject({ vad: {}, createResponse: false, interruptResponse: false });
  });

  it('semantic_vad keeps adaptive endpointing; its eagerness scales every silence and moves the turn model threshold; null is manual turns', () => {
    expect(coreTurnDetection({ type: 'semantic_vad', eagerness: 'low' }, base).vad).toEqual({
      adaptive: true,
      endpointMs: 1200,
      minEndpointMs: 600,
      maxEndpointMs: 2700,
      turnThreshold: 0.7,
      turnIncompleteMs: 4500,
    });
    expect(coreTurnDetection({ type: 'semantic_vad', eagerness: 'medium' }, base).vad).toEqual({});
    expect(coreTurnDetection({ type: 'semantic_vad', eagerness: 'high' }, base).vad).toEqual({
      adaptive: true,
      endpointMs: 240,
      minEndpointMs: 120,
      maxEndpointMs: 540,
      turnThreshold: 0.3,
      turnIncompleteMs: 900,
    });
    expect(coreTurnDetection(null, base)).toEqual({ mode: 'manual', vad: {}, createResponse: false, interruptResponse: false });
  });
});

describe('voices', () => {
  const presets = ['en-Carter_man', 'en-Davis_man', 'en-Emma_woman', 'en-Frank_man', 'en-Grace_woman', 'en-Mike_man'];
  it('every OpenAI name maps to a preset; presets work as they are; unknown names are refused', () => {
    for (const name of ['alloy', 'ash', 'ballad', 'coral', 'echo', 'sage', 'shimmer', 'verse', 'marin', 'cedar']) {
      expect(presets).toContain(resolveVoice(name, presets, 'en-Carter_man'));
      expect(OPENAI_VOICES[name]).toBe(resolveVoice(name, presets, 'en-Carter_man'));
    }
    expect(resolveVoice('en-Mike_man', presets, 'en-Carter_man')).toBe('en-Mike_man');
    expect(resolveVoice('alloy', ['en-Carter_man'], 'en-Carter_man')).toBe('en-Carter_man');
    expect(resolveVoice('nobody', presets, 'en-Carter_man')).toBeNull();
  });
});

describe('G.711 audio', () => {
  it('a 440 Hz tone survives mu-law out (24 kHz -> 8 kHz) and back in (8 kHz -> 16 kHz) at about its level', async () => {
    const output = await OutputAudio.create();
    const input = await InputAudio.create();
    const tone = new Int16Array(24_000);
    for (let i = 0; i < tone.length; i++) tone[i] = Math.round(8_000 * Math.sin((2 * Math.PI * 440 * i) / 24_000));
    const format = { type: 'audio/pcmu' as const };
    const deltas = [...output.encode(tone, format), ...output.finish(format)];
    expect(deltas.reduce((n, d) => n + d.length, 0)).toBe(8_000);
    expect(Math.max(...deltas.map((d) => d.length))).toBe(800);
    const back = input.decode(Buffer.concat(deltas).toString('base64'), format);
    const middle = back.subarray(2_000, 14_000);
    const rms = Math.sqrt(middle.reduce((sum, s) => sum + s * s, 0) / middle.length);
    expect(rms).toBeGreaterThan(8_000 / Math.SQRT2 * 0.9);
    expect(rms).toBeLessThan(8_000 / Math.SQRT2 * 1.1);
    expect(() => input.decode('abc', format)).toThrow(/base64/);
  });
});
