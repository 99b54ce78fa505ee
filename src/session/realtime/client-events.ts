/**
 * Client events of the OpenAI Realtime API (GA dialect, REALTIME.md), as zod schemas. Objects are
 * loose: fields we do not use (`tracing`, `noise_reduction`, `include`, ...) are accepted and
 * ignored, as the real server does; fields we use are checked for type and range.
 */
import { z } from 'zod';

export const audioFormatSchema = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('audio/pcm'), rate: z.literal(24_000).optional() }),
  z.looseObject({ type: z.literal('audio/pcmu') }),
  z.looseObject({ type: z.literal('audio/pcma') }),
]);
export type AudioFormat = z.infer<typeof audioFormatSchema>;

const serverVadSchema = z.looseObject({
  type: z.literal('server_vad'),
  threshold: z.number().min(0).max(1).optional(),
  prefix_padding_ms: z.number().int().min(0).max(2_000).optional(),
  silence_duration_ms: z.number().int().min(0).max(5_000).optional(),
  create_response: z.boolean().optional(),
  interrupt_response: z.boolean().optional(),
  idle_timeout_ms: z.number().int().min(0).nullable().optional(),
});
const semanticVadSchema = z.looseObject({
  type: z.literal('semantic_vad'),
  eagerness: z.enum(['low', 'medium', 'high', 'auto']).optional(),
  create_response: z.boolean().optional(),
  interrupt_response: z.boolean().optional(),
});
export const turnDetectionSchema = z.discriminatedUnion('type', [serverVadSchema, semanticVadSchema]).nullable();
export type TurnDetectionConfig = z.infer<typeof turnDetectionSchema>;

const modalitiesSchema = z.array(z.enum(['audio', 'text'])).min(1).max(2);
const maxOutputTokensSchema = z.union([z.number().int().min(1).max(4_096), z.literal('inf')]);

export const sessionConfigSchema = z.looseObject({
  type: z.enum(['realtime', 'transcription']).optional(),
  model: z.string().optional(),
  instructions: z.string().max(32_000).optional(),
  output_modalities: modalitiesSchema.optional(),
  max_output_tokens: maxOutputTokensSchema.optional(),
  audio: z
    .looseObject({
      input: z
        .looseObject({
          format: audioFormatSchema.optional(),
          transcription: z.looseObject({ model: z.string().optional(), language: z.string().optional(), prompt: z.string().optional() }).nullable().optional(),
          noise_reduction: z.unknown().optional(),
          turn_detection: turnDetectionSchema.optional(),
        })
        .optional(),
      output: z.looseObject({ format: audioFormatSchema.optional(), voice: z.string().min(1).optional(), speed: z.number().optional() }).optional(),
    })
    .optional(),
  tools: z.array(z.lazy(() => functionToolSchema)).max(128).optional(),
  tool_choice: z.lazy(() => toolChoiceSchema).optional(),
});
export type SessionConfigUpdate = z.infer<typeof sessionConfigSchema>;

/** Function tools only; their parameters are checked as JSON Schema by the session (ToolSet). */
const functionToolSchema = z.looseObject({
  type: z.literal('function'),
  name: z.string(),
  description: z.string().max(8_000).optional(),
  parameters: z.record(z.string(), z.unknown()).optional(),
});

/** `auto`, `none`, `required`, or one function (GA `{type, name}`; the older `{type, function: {name}}` too). */
const toolChoiceSchema = z.union([
  z.enum(['auto', 'none', 'required']),
  z.looseObject({ type: z.literal('function'), name: z.string().min(1) }),
  z.looseObject({ type: z.literal('function'), function: z.looseObject({ name: z.string().min(1) }) }),
]);
export type ToolChoiceConfig = z.infer<typeof toolChoiceSchema>;

/** The output of a function call, from the client that ran it. */
export const functionCallOutputItemSchema = z.looseObject({
  id: z.string().min(1).max(64).optional(),
  type: z.literal('function_call_output'),
  call_id: z.string().min(1).max(128),
  output: z.string().max(256_000),
});

const contentSchema = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('input_text'), text: z.string().max(32_000) }),
  z.looseObject({ type: z.literal('output_text'), text: z.string().max(32_000) }),
  z.looseObject({ type: z.literal('text'), text: z.string().max(32_000) }),
  z.looseObject({ type: z.literal('input_audio'), audio: z.string().optional(), transcript: z.string().nullable().optional() }),
  z.looseObject({ type: z.literal('output_audio'), audio: z.string().optional(), transcript: z.string().nullable().optional() }),
]);

export const messageItemSchema = z.looseObject({
  id: z.string().min(1).max(64).optional(),
  type: z.literal('message'),
  role: z.enum(['user', 'assistant', 'system']),
  content: z.array(contentSchema).min(1),
});

const eventId = { event_id: z.string().max(256).optional() };

export const clientEventSchema = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('session.update'), ...eventId, session: sessionConfigSchema }),
  z.looseObject({ type: z.literal('input_audio_buffer.append'), ...eventId, audio: z.string() }),
  z.looseObject({ type: z.literal('input_audio_buffer.commit'), ...eventId }),
  z.looseObject({ type: z.literal('input_audio_buffer.clear'), ...eventId }),
  z.looseObject({
    type: z.literal('conversation.item.create'),
    ...eventId,
    previous_item_id: z.string().nullable().optional(),
    // Other item types (function_call_output, ...) are refused with a clear message by the session.
    item: z.looseObject({ type: z.string() }),
  }),
  z.looseObject({ type: z.literal('conversation.item.delete'), ...eventId, item_id: z.string() }),
  z.looseObject({ type: z.literal('conversation.item.retrieve'), ...eventId, item_id: z.string() }),
  z.looseObject({
    type: z.literal('conversation.item.truncate'),
    ...eventId,
    item_id: z.string(),
    content_index: z.number().int().min(0).optional(),
    audio_end_ms: z.number().min(0),
  }),
  z.looseObject({
    type: z.literal('response.create'),
    ...eventId,
    response: z
      .looseObject({
        instructions: z.string().max(32_000).optional(),
        output_modalities: modalitiesSchema.optional(),
        max_output_tokens: maxOutputTokensSchema.optional(),
        metadata: z.record(z.string(), z.unknown()).nullable().optional(),
        conversation: z.string().optional(),
        tool_choice: z.lazy(() => toolChoiceSchema).optional(),
        audio: z.looseObject({ output: z.looseObject({ voice: z.string().min(1).optional(), format: audioFormatSchema.optional() }).optional() }).optional(),
      })
      .optional(),
  }),
  z.looseObject({ type: z.literal('response.cancel'), ...eventId, response_id: z.string().optional() }),
]);
export type ClientEvent = z.infer<typeof clientEventSchema>;

export const CLIENT_EVENT_TYPES = clientEventSchema.options.map((o) => o.shape.type.value);

/** zod issues as one line: `path: message; ...`. */
export function describeIssues(error: z.ZodError): { message: string; param: string | null } {
  const first = error.issues[0];
  return {
    message: error.issues.map((i) => `${i.path.join('.') || '(event)'}: ${i.message}`).join('; '),
    param: first && first.path.length > 0 ? first.path.join('.') : null,
  };
}
