/**
 * The session config a Realtime client sees and sets: where it starts (the worker's own settings), a
 * `session.update` merged into it and checked as a whole, and its JSON in `session.created` /
 * `session.updated`. Pure functions: the session applies a merged config to the core.
 */
import { InvalidInputError } from '../../errors.js';
import type { ToolChoice, ToolSet } from '../../llm/tools.js';
import type { EndpointerOptions } from '../../vad/endpointer.js';
import type { AudioFormat, SessionConfigUpdate, ToolChoiceConfig, TurnDetectionConfig } from './client-events.js';
import { coreToolChoice, filledTurnDetection, type EndpointSilence, type Json } from './realtime-mappings.js';
import { resolveVoice } from './voices.js';

/** The effective session config (what `session.created`/`session.updated` show), in the API's terms. */
export interface RealtimeConfig {
  instructions: string;
  outputModalities: ('audio' | 'text')[];
  maxOutputTokens: number | 'inf';
  inputFormat: AudioFormat;
  outputFormat: AudioFormat;
  transcription: Json | null;
  noiseReduction: unknown;
  turnDetection: TurnDetectionConfig;
  /** The client's voice name (alloy, a VibeVoice preset, ...). */
  voice: string;
  speed: number;
  tools: unknown[];
  toolChoice: ToolChoiceConfig;
}

/** The endpointer's settings before any client change: what turn detection defaults and scales from. */
export type BaseEndpointer = { activationThreshold: number; preRollMs: number } & EndpointSilence;

export function baseEndpointerOf(endpointer: EndpointerOptions): BaseEndpointer {
  const { activationThreshold, preRollMs, endpointMs, minEndpointMs, maxEndpointMs, turnThreshold, turnIncompleteMs } = endpointer;
  return { activationThreshold, preRollMs, endpointMs, minEndpointMs, maxEndpointMs, turnThreshold, turnIncompleteMs };
}

/** A new session's config: PCM16 at 24 kHz both ways, server_vad showing the endpointer's own numbers. */
export function initialConfig(instructions: string, voice: string, base: BaseEndpointer): RealtimeConfig {
  return {
    instructions,
    outputModalities: ['audio'],
    maxOutputTokens: 'inf',
    inputFormat: { type: 'audio/pcm', rate: 24_000 },
    outputFormat: { type: 'audio/pcm', rate: 24_000 },
    transcription: null,
    noiseReduction: null,
    // Our endpointer's own settings, so the config shown is the one in force.
    turnDetection: {
      type: 'server_vad',
      threshold: base.activationThreshold,
      prefix_padding_ms: base.preRollMs,
      silence_duration_ms: base.endpointMs,
      create_response: true,
      interrupt_response: true,
      idle_timeout_ms: null,
    },
    voice,
    speed: 1,
    tools: [],
    toolChoice: 'auto',
  };
}

/** What a merge checks against: the endpointer's base, the voices there are, the tools in force after the update. */
export interface MergeContext {
  base: BaseEndpointer;
  voices: readonly string[];
  defaultVoice: string;
  tools: ToolSet | undefined;
}

/** An update refused as a whole (none of it applies): the field it names and why. */
export interface ConfigRefusal {
  param: string;
  message: string;
}

/** `current` with `update` merged in (and the core's tool choice for it), or why the update is refused. */
export function mergeUpdate(current: RealtimeConfig, update: SessionConfigUpdate, context: MergeContext): { config: RealtimeConfig; toolChoice: ToolChoice } | { refused: ConfigRefusal } {
  const next: RealtimeConfig = { ...current };
  if (update.instructions !== undefined) next.instructions = update.instructions;
  if (update.output_modalities !== undefined) next.outputModalities = update.output_modalities.includes('audio') ? ['audio'] : ['text'];
  if (update.max_output_tokens !== undefined) next.maxOutputTokens = update.max_output_tokens;
  if (update.tools !== undefined) next.tools = update.tools;
  if (update.tool_choice !== undefined) next.toolChoice = update.tool_choice;
  let toolChoice: ToolChoice;
  try {
    toolChoice = coreToolChoice(next.toolChoice);
    context.tools?.functions(toolChoice);
  } catch (error) {
    if (!(error instanceof InvalidInputError)) throw error;
    return { refused: { param: 'session.tool_choice', message: `session.update: ${error.message}` } };
  }
  const input = update.audio?.input;
  const output = update.audio?.output;
  if (input?.format !== undefined) next.inputFormat = input.format;
  if (input?.transcription !== undefined) next.transcription = input.transcription;
  if (input?.noise_reduction !== undefined) next.noiseReduction = input.noise_reduction;
  if (input?.turn_detection !== undefined) next.turnDetection = filledTurnDetection(input.turn_detection, current.turnDetection, context.base);
  if (output?.format !== undefined) next.outputFormat = output.format;
  if (output?.speed !== undefined) next.speed = output.speed;
  if (output?.voice !== undefined) {
    if (resolveVoice(output.voice, context.voices, context.defaultVoice) === null) {
      return { refused: { param: 'session.audio.output.voice', message: `unknown voice "${output.voice}"; use an OpenAI voice name or one of: ${context.voices.join(', ')}` } };
    }
    next.voice = output.voice;
  }
  return { config: next, toolChoice };
}

/** The `session` object of `session.created` / `session.updated`. */
export function sessionJson(config: Readonly<RealtimeConfig>, id: string, model: string): Json {
  const c = config;
  return {
    type: 'realtime',
    object: 'realtime.session',
    id,
    model,
    output_modalities: c.outputModalities,
    instructions: c.instructions,
    tools: c.tools,
    tool_choice: c.toolChoice,
    max_output_tokens: c.maxOutputTokens,
    tracing: null,
    truncation: 'auto',
    prompt: null,
    include: null,
    expires_at: 0,
    audio: {
      input: { format: c.inputFormat, transcription: c.transcription, noise_reduction: c.noiseReduction, turn_detection: c.turnDetection },
      output: { format: c.outputFormat, voice: c.voice, speed: c.speed },
    },
  };
}
