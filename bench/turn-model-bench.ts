/**
 * `npm run bench -- turn`: the learned end-of-turn model (Smart Turn v3.2, the real file from the
 * pinned pipecat-ai wheel) on this CPU and on speech we make.
 *
 *  - Time per decision: Whisper features and inference in the model's worker thread, on turns of
 *    1-10 s, with the event loop's delay meanwhile (the model must not block it).
 *  - Acceptance: espeak-ng speech in several voices, at 16 kHz and through G.711 (8 kHz mu-law, then
 *    upsampled as the Realtime telephony path does), through the real endpointer (Silero VAD) as a
 *    turn job feeds it (model and ASR instant in audio time). Paused sentences are said as ONE
 *    utterance with an SSML break (300-900 ms) after a connector, a filler or a content word, so the
 *    prosody runs on across the pause: a turn closed inside the pause is a cut. Finished questions
 *    and statements: the silence waited before the turn closed (goal: at most 250 ms). Three policies:
 *    the transcript cue alone (today), the model alone (no words), and both fused (the default). The
 *    transcript is an oracle: the words said so far, punctuated as written.
 *  - Human speech: JFK's sentence and ALSA's prompts (the same policies), and Asterisk's telephone
 *    prompts, one professional voice: finished prompts, and fragments recorded to be continued, each
 *    followed by a 600 ms pause and "eight".
 *
 * espeak-ng is not a human voice: these counts say how the model behaves on it, not on people.
 */
import alawmulaw from 'alawmulaw';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { StreamResampler } from '../src/audio/resample.js';
import { listenForTurn } from '../src/pipeline/listen.js';
import { SMART_TURN_V3_2 } from '../src/models/registry.js';
import { SmartTurnModel } from '../src/turn/turn-model.js';
import { Endpointer, endpointerOptions, type EndpointerOptions } from '../src/vad/endpointer.js';
import { BUNDLED_SILERO_V5, SileroVadModel, bundledSileroPath } from '../src/vad/silero-model.js';
import { ScriptedAsrDouble } from '../test/doubles/scripted-asr-double.js';
import { readAudio, run, TRIM_SILENCE } from '../test/fixtures/speech.js';
import { alsaPrompts, asteriskPrompts, jfkRecording, jfkTurn, JFK_LAST_WORD_END_S, JFK_PAUSES_S, JFK_PHRASES } from '../test/helpers/human-speech.js';
import { realSmartTurn } from '../test/helpers/smart-turn-wheel.js';
import { summarize, type BenchResult } from './stats.js';

const RATE = 16_000;
const VOICES = ['en-us', 'en-gb', 'en-us+f3'];
const LEAD_MS = 300;
const TAIL_MS = 2_000;

type Kind = 'connector' | 'filler' | 'content';
/** [first part, pause ms, second part, what the pause follows]. */
export const PAUSED: [string, number, string, Kind][] = [
  ['Can you remind me to call my mother and', 500, 'buy some milk?', 'connector'],
  ['I need to buy a new phone but', 700, 'I do not know which one.', 'connector'],
  ['I was thinking that maybe we could go to the', 600, 'beach tomorrow.', 'connector'],
  ['Tell me about the history of', 900, 'ancient Rome.', 'connector'],
  ['Um,', 450, 'can you play some music?', 'filler'],
  ['So', 350, 'what is the weather like today?', 'filler'],
  ['I would like, uh,', 800, 'a table for two.', 'filler'],
  ['Could you, um,', 600, 'turn off the lights?', 'filler'],
  ['Set an alarm for seven', 400, 'in the morning.', 'content'],
  ['I want to learn how to play the guitar', 500, 'this summer.', 'content'],
  ['Could you explain how photosynthesis works', 600, 'in simple words?', 'content'],
  ['I want to book a flight to Paris', 800, 'next Friday.', 'content'],
  ['The meeting is on Tuesday', 300, 'at three o clock.', 'content'],
];

export const FINISHED = [
  'What is the capital of France?',
  'Can you tell me a joke?',
  'How far away is the moon?',
  'Why is the sky blue?',
  'Who wrote the novel Pride and Prejudice?',
  'What should I cook for dinner tonight?',
  'Please set a timer for ten minutes.',
  'Tell me something interesting about octopuses.',
  'I would like a cup of tea.',
  'That sounds great, thank you.',
];

/**
 * One utterance in a voice, 16 kHz float32, trimmed of the synthesizer's own leading and trailing silence.
 * Voices are espeak-ng's ('en-us'), or flite's as 'flite:slt' (SSML read the same way).
 */
async function say(ssml: string, voice: string): Promise<Float32Array> {
  const wav = voice.startsWith('flite:') ? await flite(voice.slice('flite:'.length), ssml) : await run('espeak-ng', ['-m', '-v', voice, '--stdout', '-s', '160', ssml]);
  const trim = ['silence', '1', '0.01', '0.5%', 'reverse', 'silence', '1', '0.01', '0.5%', 'reverse'];
  const raw = await run('sox', ['-t', 'wav', '-', '-t', 'raw', '-e', 'floating-point', '-b', '32', '-c', '1', '-r', String(RATE), '-', 'gain', '-n', '-3', ...trim], wav);
  return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
}

/** Through the telephone: down to 8 kHz, mu-law and back, up to 16 kHz as the Realtime input path does. */
async function viaG711(audio: Float32Array): Promise<Float32Array> {
  const down = await StreamResampler.create(RATE, 8_000, 'medium');
  const at8k = Float32Array.from([...down.process(audio), ...down.flush()]);
  down.dispose();
  const pcm = Int16Array.from(at8k, (v) => Math.max(-32768, Math.min(32767, Math.round(v * 32767))));
  const decoded = alawmulaw.mulaw.decode(alawmulaw.mulaw.encode(pcm));
  const up = await StreamResampler.create(8_000, RATE);
  const out = Float32Array.from([...up.process(Float32Array.from(decoded, (v) => v / 32768)), ...up.flush()]);
  up.dispose();
  return out;
}

const pad = (audio: Float32Array) => {
  const out = new Float32Array(Math.round(((LEAD_MS + TAIL_MS) * RATE) / 1000) + audio.length);
  out.set(audio, Math.round((LEAD_MS * RATE) / 1000));
  return out;
};

/** Where the SSML break is: the longest run of near-silence inside the speech (start, end samples). */
function longestGap(audio: Float32Array): [number, number] {
  let best: [number, number] = [0, 0];
  let runStart = -1;
  for (let i = 0; i < audio.length; i++) {
    const quiet = Math.abs(audio[i]!) < 0.003;
    if (quiet && runStart < 0) runStart = i;
    if (!quiet && runStart >= 0) {
      if (i - runStart > best[1] - best[0]) best = [runStart, i];
      runStart = -1;
    }
  }
  return best;
}

interface Sample {
  /**
   * `sentence`: human speech with pauses inside one sentence (any close before its end is a cut);
   * `fragment`: a human fragment recorded to be followed by more, then a pause and the rest.
   */
  kind: Kind | 'finished' | 'sentence' | 'fragment';
  voice: string;
  channel: '16k' | 'g711';
  audio: Float32Array;
  /** The transcript of the speech up to a sample position (the oracle ASR). */
  textAt: (endSample: number) => string;
  label: string;
}

type Policy = 'cue' | 'model' | 'fused';
const POLICY_NAMES: Record<Policy, string> = { cue: 'transcript cue alone (today)', model: 'Smart Turn alone (no words)', fused: 'Smart Turn + transcript cue (default)' };

async function makeSamples(): Promise<Sample[]> {
  const samples: Sample[] = [];
  for (const voice of VOICES) {
    for (const [first, pauseMs, second, kind] of PAUSED) {
      const speech = await say(`${first} <break time="${pauseMs}ms"/> ${second}`, voice);
      const [gapStart, gapEnd] = longestGap(speech);
      const middle = Math.round((LEAD_MS * RATE) / 1000) + (gapStart + gapEnd) / 2;
      const textAt = (end: number) => (end < middle ? first : `${first} ${second}`);
      for (const channel of ['16k', 'g711'] as const) {
        samples.push({ kind, voice, channel, audio: pad(channel === 'g711' ? await viaG711(speech) : speech), textAt, label: `${first} [${pauseMs}] ${second}` });
      }
    }
    for (const text of FINISHED) {
      const speech = await say(text, voice);
      for (const channel of ['16k', 'g711'] as const) {
        samples.push({ kind: 'finished', voice, channel, audio: pad(channel === 'g711' ? await viaG711(speech) : speech), textAt: () => text, label: text });
      }
    }
  }
  return samples;
}

interface Outcome {
  sample: Sample;
  /** Paused: a turn closed inside the sentence. Finished: the silence waited (ms) and its verdict. */
  cut: boolean;
  /** Places the sentence was closed before its end. */
  cuts: number;
  endpointMs: number;
  probability: number | null;
}

async function runPolicy(silero: SileroVadModel, model: SmartTurnModel, policy: Policy, sample: Sample): Promise<Outcome> {
  const options: Partial<EndpointerOptions> = { turnModel: policy !== 'cue' };
  const endpointer = new Endpointer(silero, endpointerOptions(options), model);
  // The audio the ASR gets begins pre-roll before the detected speech start (the lead silence, to
  // within a 32 ms VAD frame): where it ends in the stream says which words were said by then.
  const audioStart = Math.round(((LEAD_MS - endpointer.options.preRollMs) * RATE) / 1000);
  const asr = new ScriptedAsrDouble({ text: (audio) => (policy === 'model' ? '' : sample.textAt(audioStart + audio.length)) });
  const heard = await listenForTurn(endpointer, asr, sample.audio, new AbortController().signal);
  if (!heard) return { sample, cut: false, cuts: 0, endpointMs: NaN, probability: null };
  const cuts = heard.segments.length - 1;
  return { sample, cut: cuts > 0, cuts, endpointMs: heard.endpointMs, probability: heard.turn?.probability ?? null };
}

export async function benchTurnModel(): Promise<BenchResult[]> {
  const real = await realSmartTurn();
  if (real.skip !== null) {
    console.log(`\nturn model bench skipped: ${real.skip}`);
    return [];
  }
  const model = await SmartTurnModel.load({ path: real.path, sha256: SMART_TURN_V3_2.sha256 });
  const silero = await SileroVadModel.load({ path: bundledSileroPath(), sha256: BUNDLED_SILERO_V5.sha256 });
  const results: BenchResult[] = [];
  try {
    results.push(...(await decisionTime(model)));
    await verdictsBySpeech(model);
    await acceptance(silero, model);
    await humanSpeech(silero, model);
    await telephonePrompts(silero, model);
  } finally {
    await model.dispose();
    await silero.dispose();
  }
  return results;
}

/** Time per decision on this CPU: one request at a time, turns of 1-10 s (beyond 8 s the window is full). */
async function decisionTime(model: SmartTurnModel): Promise<BenchResult[]> {
  const speech = await say(FINISHED.join(' '), 'en-us');
  for (let i = 0; i < 3; i++) await model.predict(speech.subarray(0, RATE));
  // The event loop's delay on this (shared) machine with nothing to do, to compare against.
  const idle = monitorEventLoopDelay({ resolution: 2 });
  idle.enable();
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  idle.disable();
  const loop = monitorEventLoopDelay({ resolution: 2 });
  loop.enable();
  const total: number[] = [];
  const features: number[] = [];
  const inference: number[] = [];
  for (let i = 0; i < 60; i++) {
    const seconds = 1 + (i % 10);
    const verdict = await model.predict(speech.subarray(0, Math.min(speech.length, seconds * RATE)));
    total.push(verdict.ms);
    features.push(verdict.featuresMs);
    inference.push(verdict.modelMs);
  }
  loop.disable();
  const ms = (ns: number) => (ns / 1e6).toFixed(1);
  console.log(
    `\nSmart Turn v3.2 per decision (worker thread, 1 onnxruntime thread), load average ${loadavg()[0]!.toFixed(1)}: event-loop delay meanwhile p99 ${ms(loop.percentile(99))} ms, max ${ms(loop.max)} ms (idle, just before: p99 ${ms(idle.percentile(99))} ms, max ${ms(idle.max)} ms)`,
  );
  return [
    summarize('Smart Turn v3.2 per decision (request to verdict)', 'ms', total, undefined, 'features + inference in the worker, 1-10 s turns'),
    summarize('Smart Turn v3.2 Whisper features', 'ms', features),
    summarize('Smart Turn v3.2 inference (onnxruntime, int8)', 'ms', inference),
  ];
}

async function acceptance(silero: SileroVadModel, model: SmartTurnModel): Promise<void> {
  const samples = await makeSamples();
  const rows: string[] = [];
  const wrong: string[] = [];
  for (const policy of ['cue', 'model', 'fused'] as Policy[]) {
    const outcomes: Outcome[] = [];
    for (const sample of samples) outcomes.push(await runPolicy(silero, model, policy, sample));
    const cell = (kind: Kind, channel: Sample['channel']) => {
      const set = outcomes.filter((o) => o.sample.kind === kind && o.sample.channel === channel);
      return `${set.filter((o) => !o.cut).length} / ${set.length}`;
    };
    const finished = (channel: Sample['channel']) => {
      const set = outcomes.filter((o) => o.sample.kind === 'finished' && o.sample.channel === channel);
      const fast = set.filter((o) => o.endpointMs <= 250).length;
      const sorted = set.map((o) => o.endpointMs).sort((a, b) => a - b);
      return `${fast} / ${set.length} (median ${Math.round(sorted[sorted.length >> 1] ?? NaN)} ms)`;
    };
    rows.push(
      `| ${POLICY_NAMES[policy]} | ${cell('connector', '16k')} | ${cell('filler', '16k')} | ${cell('content', '16k')} | ${finished('16k')} | ${cell('connector', 'g711')} | ${cell('filler', 'g711')} | ${cell('content', 'g711')} | ${finished('g711')} |`,
    );
    if (policy === 'fused') {
      for (const o of outcomes) {
        const p = o.probability === null ? '-' : o.probability.toFixed(2);
        // (The verdict at the cut is not reported: a turn reports its last close.)
        if (o.sample.kind !== 'finished' && o.cut) wrong.push(`cut      ${o.sample.voice} ${o.sample.channel}: ${o.sample.label}`);
        if (o.sample.kind === 'finished' && !(o.endpointMs <= 250)) wrong.push(`slow ${Math.round(o.endpointMs)} ms ${o.sample.voice} ${o.sample.channel} p=${p}: ${o.sample.label}`);
      }
    }
  }
  const per = VOICES.length;
  console.log(
    `\nSmart Turn on espeak-ng speech (${VOICES.join(', ')}), as a turn job feeds the endpointer. Paused sentences: not cut / all (${PAUSED.filter((p) => p[3] === 'connector').length * per} connector, ${PAUSED.filter((p) => p[3] === 'filler').length * per} filler, ${PAUSED.filter((p) => p[3] === 'content').length * per} content-word cases per channel); finished: closed within 250 ms of silence / all:\n`,
  );
  console.log('| policy | 16 kHz connector | filler | content word | finished <= 250 ms | G.711 connector | filler | content word | finished <= 250 ms |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  console.log(rows.join('\n'));
  console.log(`\nwhat the default (fused) gets wrong:\n  ${wrong.join('\n  ') || 'nothing'}`);
}

/** A recording trimmed of its own leading and trailing silence, decoded once (two sections read the same files). */
const trimmed = new Map<string, Promise<Float32Array>>();
function readTrimmed(path: string): Promise<Float32Array> {
  let audio = trimmed.get(path);
  if (!audio) trimmed.set(path, (audio = readAudio(path, TRIM_SILENCE)));
  return audio;
}


async function humanSamples(): Promise<{ samples: Sample[]; skipped: string[] }> {
  const samples: Sample[] = [];
  const skipped: string[] = [];
  const jfk = await jfkRecording();
  if (jfk.path === null) skipped.push(jfk.skip);
  else {
    const audio = jfkTurn(await readAudio(jfk.path), TAIL_MS / 1000);
    // The words heard up to a point: the phrases whose following pause has begun by its middle.
    const textAt = (end: number) => {
      const said = JFK_PAUSES_S.filter(([from, to]) => end >= ((from + to) / 2) * RATE).length;
      return JFK_PHRASES.slice(0, said + 1).join(' ');
    };
    for (const channel of ['16k', 'g711'] as const) {
      samples.push({ kind: 'sentence', voice: 'JFK', channel, audio: channel === 'g711' ? await viaG711(audio) : audio, textAt, label: JFK_PHRASES.join(' ') });
    }
  }
  const alsa = await alsaPrompts();
  if (alsa.skip !== null) skipped.push(alsa.skip);
  for (const prompt of alsa.prompts) {
    // Trimmed of the file's own silence and padded like the espeak-ng speech.
    const speech = await readTrimmed(prompt.path);
    // Two words: the first alone until the middle of the longest gap between them.
    const [gapStart, gapEnd] = longestGap(speech);
    const middle = Math.round((LEAD_MS * RATE) / 1000) + (gapStart + gapEnd) / 2;
    const first = prompt.text.split(' ')[0]!;
    const textAt = (end: number) => (end < middle ? first : prompt.text);
    for (const channel of ['16k', 'g711'] as const) {
      samples.push({ kind: 'finished', voice: 'ALSA', channel, audio: pad(channel === 'g711' ? await viaG711(speech) : speech), textAt, label: prompt.text });
    }
  }
  return { samples, skipped };
}

/**
 * The same three policies on human speech (the model's home ground): JFK's sentence with four pauses of
 * 270-1170 ms inside it, and ALSA's spoken prompts as finished phrases. Also the model's own verdicts at
 * each of JFK's pauses and its end, at 100, 200 and 300 ms of silence.
 */
async function humanSpeech(silero: SileroVadModel, model: SmartTurnModel): Promise<void> {
  const { samples, skipped } = await humanSamples();
  for (const reason of skipped) console.log(`\nhuman speech: ${reason}`);
  if (samples.length === 0) return;
  const jfk = samples.find((s) => s.kind === 'sentence' && s.channel === '16k');
  if (jfk) {
    const lines: string[] = [];
    const ends = [...JFK_PAUSES_S.map(([from]) => from), JFK_LAST_WORD_END_S];
    for (const [i, end] of ends.entries()) {
      const verdicts: string[] = [];
      for (const silenceMs of [100, 200, 300]) {
        const upTo = Math.round(end * RATE + (silenceMs * RATE) / 1000);
        verdicts.push((await model.predict(jfk.audio.subarray(0, upTo))).probability.toFixed(2));
      }
      const truth = i < JFK_PAUSES_S.length ? `pause ${Math.round((JFK_PAUSES_S[i]![1] - JFK_PAUSES_S[i]![0]) * 1000)} ms, mid-sentence` : 'end of the sentence';
      lines.push(`  ${verdicts.join(' ')}  after "${JFK_PHRASES[i]}" (${truth})`);
    }
    console.log(`\nSmart Turn's probability of "complete" on JFK's sentence (human speech, 16 kHz) at 100 / 200 / 300 ms of silence:\n${lines.join('\n')}`);
  }
  const rows: string[] = [];
  for (const policy of ['cue', 'model', 'fused'] as Policy[]) {
    const outcomes: Outcome[] = [];
    for (const sample of samples) outcomes.push(await runPolicy(silero, model, policy, sample));
    const sentence = (channel: Sample['channel']) => {
      const o = outcomes.find((x) => x.sample.kind === 'sentence' && x.sample.channel === channel);
      return o ? `${JFK_PAUSES_S.length - o.cuts} / ${JFK_PAUSES_S.length}, end after ${Math.round(o.endpointMs)} ms` : '-';
    };
    const finished = (channel: Sample['channel']) => {
      const set = outcomes.filter((o) => o.sample.kind === 'finished' && o.sample.channel === channel);
      if (set.length === 0) return '-';
      const sorted = set.map((o) => o.endpointMs).sort((a, b) => a - b);
      const cut = set.filter((o) => o.cut).length;
      return `${set.filter((o) => o.endpointMs <= 250).length} / ${set.length} (median ${Math.round(sorted[sorted.length >> 1]!)} ms${cut ? `; ${cut} cut between their words` : ''})`;
    };
    rows.push(`| ${POLICY_NAMES[policy]} | ${sentence('16k')} | ${finished('16k')} | ${sentence('g711')} | ${finished('g711')} |`);
  }
  console.log('\nHuman speech: JFK pauses not cut / 4 and the silence that closed the sentence; ALSA prompts closed within 250 ms / all:\n');
  console.log('| policy | 16 kHz JFK | ALSA prompts <= 250 ms | G.711 JFK | ALSA prompts <= 250 ms |');
  console.log('|---|---|---|---|---|');
  console.log(rows.join('\n'));
}

/** What a caller says after an Asterisk fragment and its pause: "eight" (Asterisk's own digits/8). */
const ASTERISK_CONTINUATION = { path: '/usr/share/asterisk/sounds/en_US_f_Allison/digits/8.wav', text: 'eight.' };
const FRAGMENT_PAUSE_MS = 600;

/**
 * The three policies on one human voice at telephone quality (Asterisk's prompts, 8 kHz recordings,
 * upsampled as the Realtime telephony input is): finished one-sentence prompts with no comma (the
 * oracle transcript is the whole sentence, so a pause inside one would read as its end), closed within
 * 250 ms; and the fragments recorded to be followed by more, each followed by a 600 ms pause and
 * "eight" (how Asterisk itself strings them: "To leave the conference..." "press 8"), not cut.
 */
async function telephonePrompts(silero: SileroVadModel, model: SmartTurnModel): Promise<void> {
  const { prompts, skip } = await asteriskPrompts();
  if (skip !== null) {
    console.log(`\ntelephone prompts: ${skip}`);
    return;
  }
  const samples: Sample[] = [];
  const continuation = await readTrimmed(ASTERISK_CONTINUATION.path);
  for (const prompt of prompts) {
    const speech = await readTrimmed(prompt.path);
    if (prompt.kind === 'finished') {
      if (/[,;:]|[.?!]\s/.test(prompt.text)) continue;
      samples.push({ kind: 'finished', voice: 'Asterisk', channel: '16k', audio: pad(speech), textAt: () => prompt.text, label: prompt.text });
      continue;
    }
    const pause = Math.round((FRAGMENT_PAUSE_MS * RATE) / 1000);
    const audio = new Float32Array(speech.length + pause + continuation.length);
    audio.set(speech);
    audio.set(continuation, speech.length + pause);
    const middle = Math.round((LEAD_MS * RATE) / 1000) + speech.length + pause / 2;
    const textAt = (end: number) => (end < middle ? prompt.text : `${prompt.text} ${ASTERISK_CONTINUATION.text}`);
    samples.push({ kind: 'fragment', voice: 'Asterisk', channel: '16k', audio: pad(audio), textAt, label: `${prompt.text}... [${FRAGMENT_PAUSE_MS}] ${ASTERISK_CONTINUATION.text}` });
  }
  const rows: string[] = [];
  const wrong: string[] = [];
  for (const policy of ['cue', 'model', 'fused'] as Policy[]) {
    const outcomes: Outcome[] = [];
    for (const sample of samples) outcomes.push(await runPolicy(silero, model, policy, sample));
    const fragments = outcomes.filter((o) => o.sample.kind === 'fragment');
    const finished = outcomes.filter((o) => o.sample.kind === 'finished');
    const sorted = finished.map((o) => o.endpointMs).sort((a, b) => a - b);
    rows.push(
      `| ${POLICY_NAMES[policy]} | ${fragments.filter((o) => !o.cut).length} / ${fragments.length} | ${finished.filter((o) => o.endpointMs <= 250).length} / ${finished.length} (median ${Math.round(sorted[sorted.length >> 1] ?? NaN)} ms) |`,
    );
    if (policy !== 'fused') continue;
    for (const o of fragments) if (o.cut) wrong.push(`cut  ${o.sample.label}`);
    for (const o of finished) if (!(o.endpointMs <= 250)) wrong.push(`slow ${Math.round(o.endpointMs)} ms p=${o.probability?.toFixed(2) ?? '-'}: ${o.sample.label}`);
  }
  console.log('\nHuman speech at telephone quality (Asterisk prompts, one voice): fragments not cut / all; finished one-sentence prompts closed within 250 ms / all:\n');
  console.log('| policy | fragment, 600 ms pause, "eight" | finished <= 250 ms |');
  console.log('|---|---|---|');
  console.log(rows.join('\n'));
  console.log(`\nwhat the default (fused) gets wrong on them:\n  ${wrong.join('\n  ') || 'nothing'}`);
}

/** flite writes its WAV header after the samples (its sizes), so to a file, not a pipe. */
async function flite(voice: string, ssml: string): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'flite-'));
  try {
    await run('flite', ['-voice', voice, '-ssml', '-t', `<speak>${ssml}</speak>`, '-o', join(dir, 'out.wav')]);
    return await readFile(join(dir, 'out.wav'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** flite's voices, where flite is installed (apt-get install flite): other synthesizers than espeak-ng. */
async function fliteVoices(): Promise<string[]> {
  const listed = await run('flite', ['-lv']).then(
    (out) => out.toString(),
    () => '',
  );
  return ['slt', 'rms', 'awb', 'kal16'].filter((v) => listed.split(/\s+/).includes(v)).map((v) => `flite:${v}`);
}

/**
 * How often the model alone is right, by kind of speech, at 200 ms of silence (where pipecat asks it):
 * finished sentences should read complete, the paused sentences' first parts (said in one breath with
 * the rest, cut at the pause) incomplete. Synthetic voices against human speech (JFK's four pauses and
 * end; ALSA's prompts, all finished).
 */
async function verdictsBySpeech(model: SmartTurnModel): Promise<void> {
  const silence = (ms: number) => new Float32Array(Math.round((ms * RATE) / 1000));
  const judge = async (speech: Float32Array) => (await model.predict(Float32Array.from([...silence(200), ...speech, ...silence(200)]))).probability;
  const rows: string[] = [];
  const fliteSkip = (await fliteVoices()).length === 0 ? ['flite voices: flite not installed (apt-get install flite)'] : [];
  for (const voice of [...VOICES, ...(await fliteVoices())]) {
    let finishedRight = 0;
    for (const text of FINISHED) if ((await judge(await say(text, voice))) >= 0.5) finishedRight++;
    let partsRight = 0;
    for (const [first, pauseMs, second] of PAUSED) {
      const speech = await say(`${first} <break time="${pauseMs}ms"/> ${second}`, voice);
      if ((await judge(speech.subarray(0, longestGap(speech)[0]))) < 0.5) partsRight++;
    }
    const share = Math.round((100 * (finishedRight + partsRight)) / (FINISHED.length + PAUSED.length));
    rows.push(`| ${voice.startsWith('flite:') ? `flite ${voice.slice(6)}` : `espeak-ng ${voice}`} | ${finishedRight} / ${FINISHED.length} | ${partsRight} / ${PAUSED.length} | ${share}% |`);
  }
  const jfk = await jfkRecording();
  if (jfk.path !== null) {
    const recording = await readAudio(jfk.path);
    const at = (s: number) => Math.round(s * RATE);
    let partsRight = 0;
    for (const [from] of JFK_PAUSES_S) if ((await model.predict(recording.subarray(0, at(from + 0.2)))).probability < 0.5) partsRight++;
    const endRight = (await model.predict(recording.subarray(0, at(JFK_LAST_WORD_END_S + 0.2)))).probability >= 0.5 ? 1 : 0;
    rows.push(`| human: JFK (recorded silence) | ${endRight} / 1 | ${partsRight} / ${JFK_PAUSES_S.length} | ${Math.round((100 * (endRight + partsRight)) / (1 + JFK_PAUSES_S.length))}% |`);
  }
  const alsa = await alsaPrompts();
  if (alsa.prompts.length > 0) {
    let right = 0;
    for (const prompt of alsa.prompts) if ((await judge(await readTrimmed(prompt.path))) >= 0.5) right++;
    rows.push(`| human: ALSA prompts | ${right} / ${alsa.prompts.length} | - | ${Math.round((100 * right) / alsa.prompts.length)}% |`);
  }
  const asterisk = await asteriskPrompts();
  if (asterisk.prompts.length > 0) {
    const right = { finished: 0, fragment: 0 };
    const all = { finished: 0, fragment: 0 };
    for (const prompt of asterisk.prompts) {
      const complete = (await judge(await readTrimmed(prompt.path))) >= 0.5;
      all[prompt.kind]++;
      if (complete === (prompt.kind === 'finished')) right[prompt.kind]++;
    }
    const share = Math.round((100 * (right.finished + right.fragment)) / (all.finished + all.fragment));
    rows.push(`| human: Asterisk prompts (one voice, 8 kHz) | ${right.finished} / ${all.finished} | ${right.fragment} / ${all.fragment} (fragments recorded to be continued) | ${share}% |`);
  }
  for (const reason of [...fliteSkip, ...(jfk.skip ? [jfk.skip] : []), ...(alsa.skip ? [alsa.skip] : []), ...(asterisk.skip ? [asterisk.skip] : [])]) console.log(`\nverdicts by speech: ${reason}`);
  console.log('\nSmart Turn alone at 200 ms of silence, right / all: finished sentences read complete, paused sentences cut at the pause read incomplete:\n');
  console.log('| speech | finished: complete | cut mid-sentence: incomplete | right |');
  console.log('|---|---|---|---|');
  console.log(rows.join('\n'));
}
