/**
 * The live session protocol over WebSocket. Client -> server: binary frames of PCM16 LE mono 16 kHz
 * audio (any length up to 2 s; 200-400 ms is typical) and JSON messages; server -> client: binary
 * frames of PCM16 LE mono 24 kHz audio and JSON events. Every message is a zod schema here.
 */
import { z } from 'zod';
import type { TurnMetrics } from '../pipeline/events.js';
import { CORE_INPUT_SAMPLE_RATE, CORE_OUTPUT_SAMPLE_RATE, type SessionEndReason } from './core-types.js';

export type { SessionEndReason } from './core-types.js';
export const SESSION_INPUT_SAMPLE_RATE = CORE_INPUT_SAMPLE_RATE;
export const SESSION_OUTPUT_SAMPLE_RATE = CORE_OUTPUT_SAMPLE_RATE;
/** Two seconds of 16 kHz PCM16. */
export const MAX_AUDIO_FRAME_BYTES = 64_000;

export const clientMessageSchema = z.discriminatedUnion('type', [
  /** First message when the token is not in the URL (browsers cannot set headers on a WebSocket). */
  z.strictObject({ type: z.literal('auth'), token: z.string().min(1) }),
  /** Changes settings for the answers that follow. */
  z.strictObject({
    type: z.literal('config'),
    voice: z.string().min(1).optional(),
    system_prompt: z.string().max(8_000).optional(),
    temperature: z.number().min(0).max(2).optional(),
    max_response_tokens: z.number().int().min(1).max(2_048).optional(),
  }),
  /** A typed user turn (no audio). */
  z.strictObject({ type: z.literal('text'), text: z.string().min(1).max(8_000) }),
  z.strictObject({ type: z.literal('ping') }),
  /** The client is done: the session ends after the answer in progress is cut. */
  z.strictObject({ type: z.literal('end') }),
]);

export type ServerEvent =
  | { type: 'ready'; session_id: string; sample_rate_in: number; sample_rate_out: number; format: 'pcm16'; voice: string }
  | { type: 'speech_start'; at_ms: number }
  | { type: 'speech_end'; start_ms: number; end_ms: number }
  | { type: 'transcript'; turn: number; text: string }
  /** The words so far of the speech in progress (incremental transcription); the turn's `transcript` follows. */
  | { type: 'partial_transcript'; turn: number; text: string }
  | { type: 'response_start'; turn: number }
  | { type: 'text'; turn: number; delta: string }
  /** Outgoing audio paused: the user may be interrupting. */
  | { type: 'paused'; turn: number }
  /** It was a blip: audio continues where it paused. */
  | { type: 'resumed'; turn: number }
  /** The answer was cut; the client should drop audio it has buffered. */
  | { type: 'interrupted'; turn: number }
  /** The answer is done (or was cut): where its time went, with the names of DESIGN.md. */
  | ({ type: 'metrics'; turn: number } & TurnMetrics)
  | { type: 'pong' }
  | { type: 'error'; code: string; message: string }
  | { type: 'session_end'; reason: SessionEndReason; turns: number; audio_in_s: number; audio_out_s: number; llm_tokens_in: number; llm_tokens_out: number; llm_tokens_wasted: number; duration_ms: number };
