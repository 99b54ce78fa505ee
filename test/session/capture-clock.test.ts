/** The capture clock: arrival times of frames give capture times of samples inside them (pure arithmetic, given times). */
import { describe, expect, it } from 'vitest';
import { CaptureClock } from '../../src/session/capture-clock.js';

describe('CaptureClock', () => {
  it('puts a sample at its frame arrival minus the audio after it in the frame', () => {
    const clock = new CaptureClock(16_000);
    // 320 ms frames (5120 samples) arriving at 1000, 1320, 1640 ms.
    clock.arrived(5_120, 1_000);
    clock.arrived(5_120, 1_320);
    clock.arrived(5_120, 1_640);
    // Speech ended 20 ms (320 samples) into the second frame: captured 300 ms before that frame arrived.
    expect(clock.captureTimeOf(5_120 + 320)).toBeCloseTo(1_020);
    // The end of a frame is its arrival.
    expect(clock.captureTimeOf(10_240)).toBe(1_320);
    expect(clock.captureTimeOf(1)).toBeCloseTo(1_000 - 319.9375);
  });

  it('with small frames the estimate lies within one frame of the large-frame one', () => {
    const small = new CaptureClock(16_000);
    for (let i = 0; i < 50; i++) small.arrived(320, 1_000 + 20 * (i + 1));
    // Same capture schedule, different frame size: the estimate of a sample does not depend on it.
    const large = new CaptureClock(16_000);
    for (let i = 0; i < 3; i++) large.arrived(5_120, 1_000 + 320 * (i + 1));
    expect(small.captureTimeOf(7_000)).toBeCloseTo(large.captureTimeOf(7_000));
  });
});
