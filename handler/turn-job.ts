/**
 * A turn job: one audio turn, or a scripted conversation (`turns`) answered in order with history.
 * All audio is fetched and decoded before the first answer, so bad input fails the job at once
 * with the field named. Streams the contract's events, then `done` with what the bill is made of.
 */
import { decodeBase64Audio, decodeInputAudio, type InputAudio } from '../src/audio/decode-input.js';
import { fetchAudio } from '../src/audio/fetch-audio.js';
import { InvalidInputError, S2sError } from '../src/errors.js';
import type { Engines } from '../src/pipeline/engines.js';
import type { JobEvent } from '../src/pipeline/events.js';
import { runTurn } from '../src/pipeline/turn.js';
import { TTS_SAMPLE_RATE } from '../src/tts/tts.js';
import { checkedEndpointerOverrides, type TurnJobInput } from './job-input.js';
import type { PipelineConfig } from './pipeline-config.js';

type AudioItem = Pick<TurnJobInput, 'audio' | 'audio_url' | 'audio_format' | 'sample_rate'>;

async function loadAudio(item: AudioItem, field: string, config: PipelineConfig, signal: AbortSignal): Promise<InputAudio> {
  const encoding = item.audio_format === 'pcm16' ? { format: 'pcm16' as const, sampleRate: item.sample_rate! } : { format: 'wav' as const };
  try {
    if (item.audio !== undefined) return await decodeBase64Audio(item.audio, encoding, config.audio, field);
    const bytes = await fetchAudio(item.audio_url!, config.audioUrl, `${field}_url`, signal);
    return await decodeInputAudio(bytes, encoding, config.audio);
  } catch (error) {
    // Name the field in every audio error, so a client with many turns knows which one.
    if (error instanceof S2sError && !error.message.startsWith(`${field}:`)) error.message = `${field}: ${error.message}`;
    throw error;
  }
}

export async function* runTurnJob(input: TurnJobInput, engines: Engines, config: PipelineConfig, signal: AbortSignal): AsyncGenerator<JobEvent> {
  const started = performance.now();
  const items: { item: AudioItem; field: string }[] = input.turns
    ? input.turns.map((item, i) => ({ item, field: `turns.${i}.audio` }))
    : [{ item: input, field: 'audio' }];
  const jobs = config.jobs;
  const voice = input.voice ?? jobs.voice;
  if (voice !== undefined && !engines.tts.voices.includes(voice)) {
    throw new InvalidInputError(`voice: unknown voice "${voice}"; valid voices: ${engines.tts.voices.join(', ')}`);
  }
  const vad = checkedEndpointerOverrides(input.vad, config.engines.vad.defaults);
  const audios: InputAudio[] = [];
  for (const { item, field } of items) audios.push(await loadAudio(item, field, config, signal));

  const conversation = await engines.llm.openConversation({ systemPrompt: input.system_prompt ?? jobs.systemPrompt, history: input.history });
  const totals = { audioOutSamples: 0, llmTokensIn: 0, llmTokensOut: 0, llmTokensWasted: 0 };
  try {
    for (const [turn, audio] of audios.entries()) {
      signal.throwIfAborted();
      const summary = yield* runTurn(
        engines,
        conversation,
        turn,
        audio.samples,
        {
          voice,
          maxTokens: input.max_response_tokens ?? jobs.maxResponseTokens,
          temperature: input.temperature ?? jobs.temperature,
          cfg: jobs.cfg,
          steps: jobs.steps,
          vad,
          preemption: input.preemption ?? jobs.preemption,
        },
        signal,
      );
      totals.audioOutSamples += summary.audioOutSamples;
      totals.llmTokensIn += summary.llmTokensIn;
      totals.llmTokensOut += summary.llmTokensOut;
      totals.llmTokensWasted += summary.llmTokensWasted;
    }
  } finally {
    conversation.dispose();
  }
  yield {
    type: 'done',
    turns: audios.length,
    audio_in_s: Math.round(audios.reduce((s, a) => s + a.durationMs, 0)) / 1000,
    audio_out_s: Math.round((totals.audioOutSamples / TTS_SAMPLE_RATE) * 1000) / 1000,
    llm_tokens_in: totals.llmTokensIn,
    llm_tokens_out: totals.llmTokensOut,
    llm_tokens_wasted: totals.llmTokensWasted,
    execution_ms: Math.round(performance.now() - started),
  };
}
