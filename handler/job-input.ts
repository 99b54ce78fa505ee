/**
 * The job input contract (DESIGN.md, "Turn job contract"), validated with zod. Unknown or wrong
 * fields are refused with one message that lists every problem, never a crash.
 */
import { z } from 'zod';
import { InvalidInputError } from '../src/errors.js';
import { formatIssues } from './config.js';
import { endpointerOptionsSchema, type EndpointerOptions } from '../src/vad/endpointer.js';

const audioFields = {
  /** Base64 of a WAV file, or of raw PCM16 when `audio_format` is "pcm16". */
  audio: z.string().min(1, 'must not be empty').optional(),
  /** http(s) URL of a WAV file; fetched with size and time limits. */
  audio_url: z.string().url().optional(),
  audio_format: z.enum(['wav', 'pcm16']).optional(),
  /** Required with `audio_format: "pcm16"`. */
  sample_rate: z.number().int().min(8_000).max(48_000).optional(),
};

function checkAudioSource(item: { audio?: string; audio_url?: string; audio_format?: string; sample_rate?: number }, ctx: z.RefinementCtx) {
  if (item.audio !== undefined && item.audio_url !== undefined) {
    ctx.addIssue({ code: 'custom', message: 'give either "audio" or "audio_url", not both', path: ['audio'] });
  }
  if (item.audio_format === 'pcm16' && item.sample_rate === undefined) {
    ctx.addIssue({ code: 'custom', message: 'is required when audio_format is "pcm16"', path: ['sample_rate'] });
  }
}

export const audioItemSchema = z.strictObject(audioFields).superRefine((item, ctx) => {
  checkAudioSource(item, ctx);
  if (item.audio === undefined && item.audio_url === undefined) {
    ctx.addIssue({ code: 'custom', message: 'each turn needs "audio" or "audio_url"', path: ['audio'] });
  }
});

export const vadOverridesSchema = z.strictObject({
  activation_threshold: z.number().min(0).max(1).optional(),
  release_threshold: z.number().min(0).max(1).optional(),
  min_speech_ms: z.number().int().min(0).max(5_000).optional(),
  endpoint_ms: z.number().int().min(50).max(5_000).optional(),
  /** Adaptive endpointing on or off, and its bounds (see the README's configuration table). */
  adaptive_endpoint: z.boolean().optional(),
  min_endpoint_ms: z.number().int().min(50).max(5_000).optional(),
  max_endpoint_ms: z.number().int().min(50).max(5_000).optional(),
  pre_roll_ms: z.number().int().min(0).max(2_000).optional(),
  max_utterance_ms: z.number().int().min(1_000).max(120_000).optional(),
  /** The learned end-of-turn model (Smart Turn) on or off for this job, its threshold, and its incomplete wait. */
  turn_model: z.boolean().optional(),
  turn_threshold: z.number().min(0).max(1).optional(),
  turn_incomplete_ms: z.number().int().min(50).max(10_000).optional(),
});

const conversationFields = {
  system_prompt: z.string().max(8_000).optional(),
  history: z
    .array(z.strictObject({ role: z.enum(['user', 'assistant']), content: z.string().max(8_000) }))
    .max(200)
    .optional(),
  voice: z.string().min(1).max(100).optional(),
  max_response_tokens: z.number().int().min(1).max(2_048).optional(),
  temperature: z.number().min(0).max(2).optional(),
  vad: vadOverridesSchema.optional(),
  /** Answer during the endpoint wait: full (LLM and TTS), llm (LLM only) or off. */
  preemption: z.enum(['full', 'llm', 'off']).optional(),
};

export const turnJobInputSchema = z
  .strictObject({
    mode: z.literal('turn'),
    ...audioFields,
    turns: z.array(audioItemSchema).min(1, 'must hold at least one turn').max(50).optional(),
    ...conversationFields,
  })
  .superRefine((input, ctx) => {
    checkAudioSource(input, ctx);
    const hasSingle = input.audio !== undefined || input.audio_url !== undefined;
    if (hasSingle && input.turns !== undefined) {
      ctx.addIssue({ code: 'custom', message: 'give "audio"/"audio_url" or "turns", not both', path: ['turns'] });
    }
    if (!hasSingle && input.turns === undefined) {
      ctx.addIssue({ code: 'custom', message: 'a turn job needs "audio", "audio_url" or "turns"', path: ['audio'] });
    }
  });

export const sessionJobInputSchema = z.strictObject({
  mode: z.literal('session'),
  ...conversationFields,
  /** The session ends after this long without audio from the client. */
  idle_timeout_ms: z.number().int().min(1_000).max(3_600_000).optional(),
});

export type TurnJobInput = z.infer<typeof turnJobInputSchema>;
export type SessionJobInput = z.infer<typeof sessionJobInputSchema>;
export type JobInput = TurnJobInput | SessionJobInput;

const MODES = ['turn', 'session'] as const;
/** Error messages stay short whatever the input: a job's error is posted, logged and shown. */
const MAX_ISSUES = 10;
const MAX_ISSUE_CHARS = 200;

/** A bounded description of a value for an error message: never the whole of a huge or deep value. */
function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  return Array.isArray(value) ? 'an array' : `a ${typeof value}`;
}

function formatInputIssues(issues: readonly z.core.$ZodIssue[]): string {
  const clip = (text: string) => (text.length > MAX_ISSUE_CHARS ? `${text.slice(0, MAX_ISSUE_CHARS)}...` : text);
  const shown = issues.slice(0, MAX_ISSUES).map((issue) => ({ ...issue, path: issue.path.map((key) => clip(String(key))), message: clip(issue.message) }));
  const more = issues.length - shown.length;
  return formatIssues(shown) + (more > 0 ? `; and ${more} more problem${more === 1 ? '' : 's'}` : '');
}

/** Validates a job's input; throws InvalidInputError naming every wrong field. */
export function parseJobInput(input: unknown): JobInput {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new InvalidInputError(`input must be a JSON object, got ${Array.isArray(input) ? 'an array' : typeof input}`);
  }
  const mode = (input as { mode?: unknown }).mode ?? 'turn';
  if (!MODES.includes(mode as (typeof MODES)[number])) {
    throw new InvalidInputError(`invalid input: mode: must be "turn" or "session", got ${describeValue(mode)}`);
  }
  const schema = mode === 'session' ? sessionJobInputSchema : turnJobInputSchema;
  const parsed = schema.safeParse({ ...input, mode });
  if (!parsed.success) throw new InvalidInputError(`invalid input: ${formatInputIssues(parsed.error.issues)}`);
  return parsed.data;
}

/** The job's `vad` field names, by the endpointer's names, for errors a job's author can act on. */
const VAD_FIELDS: Record<keyof EndpointerOptions, string> = {
  activationThreshold: 'vad.activation_threshold',
  releaseThreshold: 'vad.release_threshold',
  minSpeechMs: 'vad.min_speech_ms',
  endpointMs: 'vad.endpoint_ms',
  adaptive: 'vad.adaptive_endpoint',
  minEndpointMs: 'vad.min_endpoint_ms',
  maxEndpointMs: 'vad.max_endpoint_ms',
  speculateAfterMs: 'vad.speculate_after_ms',
  preRollMs: 'vad.pre_roll_ms',
  maxUtteranceMs: 'vad.max_utterance_ms',
  turnModel: 'vad.turn_model',
  turnThreshold: 'vad.turn_threshold',
  turnIncompleteMs: 'vad.turn_incomplete_ms',
  turnRecheckMs: 'vad.turn_recheck_ms',
};

/**
 * The job's `vad` overrides, checked over the worker's defaults exactly as the endpointer will
 * check them, before any work starts: a job that sets only `activation_threshold` below the
 * worker's release threshold fails here, naming its fields, not later with a bare RangeError.
 */
export function checkedEndpointerOverrides(vad: z.infer<typeof vadOverridesSchema> | undefined, defaults: Partial<EndpointerOptions>): Partial<EndpointerOptions> {
  const overrides = endpointerOverrides(vad);
  const name = (key: keyof EndpointerOptions) => (key in overrides ? VAD_FIELDS[key] : `the worker's ${VAD_FIELDS[key]} default`);
  const parsed = endpointerOptionsSchema.safeParse({ ...defaults, ...overrides });
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${name(issue.path[0] as keyof EndpointerOptions)}: ${issue.message}`);
    throw new InvalidInputError(`invalid input: ${problems.join('; ')}`);
  }
  const { activationThreshold, releaseThreshold } = parsed.data;
  if (releaseThreshold > activationThreshold) {
    throw new InvalidInputError(
      `invalid input: ${name('releaseThreshold')} (${releaseThreshold}) must not exceed ${name('activationThreshold')} (${activationThreshold})`,
    );
  }
  return overrides;
}

/** The job's `vad` overrides, in the endpointer's own names. */
function endpointerOverrides(vad: z.infer<typeof vadOverridesSchema> | undefined): Partial<EndpointerOptions> {
  return {
    ...(vad?.activation_threshold !== undefined && { activationThreshold: vad.activation_threshold }),
    ...(vad?.release_threshold !== undefined && { releaseThreshold: vad.release_threshold }),
    ...(vad?.min_speech_ms !== undefined && { minSpeechMs: vad.min_speech_ms }),
    ...(vad?.endpoint_ms !== undefined && { endpointMs: vad.endpoint_ms }),
    ...(vad?.adaptive_endpoint !== undefined && { adaptive: vad.adaptive_endpoint }),
    ...(vad?.min_endpoint_ms !== undefined && { minEndpointMs: vad.min_endpoint_ms }),
    ...(vad?.max_endpoint_ms !== undefined && { maxEndpointMs: vad.max_endpoint_ms }),
    ...(vad?.pre_roll_ms !== undefined && { preRollMs: vad.pre_roll_ms }),
    ...(vad?.max_utterance_ms !== undefined && { maxUtteranceMs: vad.max_utterance_ms }),
    ...(vad?.turn_model !== undefined && { turnModel: vad.turn_model }),
    ...(vad?.turn_threshold !== undefined && { turnThreshold: vad.turn_threshold }),
    ...(vad?.turn_incomplete_ms !== undefined && { turnIncompleteMs: vad.turn_incomplete_ms }),
  };
}
