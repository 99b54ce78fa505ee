/**
 * Audio and VAD benchmarks:
 *  - Silero VAD cost per 32 ms frame (one model call, one build-machine core), on speech and silence
 *  - resampling cost, in ms of compute per second of audio (1000 / that = times faster than real time)
 */
import { resample, StreamResampler } from '../src/audio/resample.js';
import { SileroVadModel, VAD_CONTEXT_SAMPLES, VAD_FRAME_SAMPLES, bundledSileroPath, BUNDLED_SILERO_V5 } from '../src/vad/silero-model.js';
import { makeUtterance } from '../test/fixtures/speech.js';
import { summarize, type BenchResult } from './stats.js';

export async function benchAudioVad(): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  const model = await SileroVadModel.load({ path: bundledSileroPath(), sha256: BUNDLED_SILERO_V5.sha256 });
  const utterance = await makeUtterance([{ silenceMs: 500 }, { say: 'How far away is the moon, and could we ever live there?' }, { silenceMs: 500 }]);
  const state = SileroVadModel.initialState();
  const input = new Float32Array(VAD_CONTEXT_SAMPLES + VAD_FRAME_SAMPLES);
  const times: number[] = [];
  for (let round = 0; round < 10; round++) {
    for (let at = 0; at + VAD_FRAME_SAMPLES <= utterance.samples.length; at += VAD_FRAME_SAMPLES) {
      input.copyWithin(0, VAD_FRAME_SAMPLES);
      input.set(utterance.samples.subarray(at, at + VAD_FRAME_SAMPLES), VAD_CONTEXT_SAMPLES);
      const started = performance.now();
      await model.probability(input, state);
      times.push(performance.now() - started);
    }
  }
  results.push(summarize('Silero VAD per 32 ms frame', 'ms', times.slice(100), { median: 0.2 }));
  await model.dispose();

  // Resampling: whole-file input conversion (medium quality) and streaming TTS-rate conversion (fastest).
  const seconds = 10;
  const input441 = Float32Array.from({ length: 44_100 * seconds }, (_, i) => 0.3 * Math.sin(i / 7) + 0.1 * Math.sin(i / 3));
  const wholeFile: number[] = [];
  for (let i = 0; i < 10; i++) {
    const started = performance.now();
    await resample(input441, 44_100, 16_000, 'medium');
    wholeFile.push((performance.now() - started) / seconds);
  }
  results.push(summarize('resample 44.1k->16k whole file (medium)', 'ms/audio s', wholeFile));
  const streaming: number[] = [];
  const chunk = input441.subarray(0, 3200);
  for (let i = 0; i < 10; i++) {
    const converter = await StreamResampler.create(24_000, 16_000, 'fastest');
    const started = performance.now();
    for (let c = 0; c < 75; c++) converter.process(chunk); // 10 s of 24 kHz audio in TTS-sized chunks
    converter.flush();
    streaming.push((performance.now() - started) / seconds);
    converter.dispose();
  }
  results.push(summarize('resample 24k->16k streaming (fastest)', 'ms/audio s', streaming));
  return results;
}
