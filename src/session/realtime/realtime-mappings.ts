/**
 * The mappings between the OpenAI Realtime API's shapes and the session core's: items, errors, tool
 * choice and turn detection. Pure functions: the wire protocol's vocabulary, apart from the session
 * that routes events (realtime-session.ts), its config (realtime-config.ts) and the responses it
 * sends (realtime-responses.ts).
 */
import type { ToolChoice } from '../../llm/tools.js';
import type { EndpointerOptions } from '../../vad/endpointer.js';
import type { ConversationItem } from '../conversation-items.js';
import { newId } from '../ids.js';
import type { TurnDetection } from '../core-types.js';
import type { ToolChoiceConfig, TurnDetectionConfig } from './client-events.js';

export type Json = Record<string, unknown>;

/** An `error` event in the documented shape; `clientEventId` names the client event that caused it. */
export function realtimeErrorEvent(type: string, code: string, message: string, param: string | null = null, clientEventId: string | null = null, eventId = newId('event')): Json {
  return { type: 'error', event_id: eventId, error: { type, code, message, param, event_id: clientEventId } };
}

/** The core's tool choice for the API's. */
export function coreToolChoice(choice: ToolChoiceConfig): ToolChoice {
  if (typeof choice === 'string') return choice;
  const named = choice as { name?: string; function?: { name: string } };
  return { name: named.function?.name ?? named.name ?? '' };
}

/** The Realtime API's item shape of one of the core's items. */
export function renderItem(item: Readonly<ConversationItem>): Json {
  if (item.functionCall) {
    const { callId, name, arguments: args } = item.functionCall;
    return { id: item.id, object: 'realtime.item', type: 'function_call', status: item.status, call_id: callId, name, arguments: args };
  }
  if (item.functionOutput) {
    return { id: item.id, object: 'realtime.item', type: 'function_call_output', status: item.status, call_id: item.functionOutput.callId, output: item.functionOutput.output };
  }
  const content =
    item.role === 'user' && item.modality === 'audio'
      ? [{ type: 'input_audio', transcript: item.text }]
      : item.role === 'assistant'
        ? [item.modality === 'audio' ? { type: 'output_audio', transcript: item.text ?? '' } : { type: 'output_text', text: item.text ?? '' }]
        : [{ type: 'input_text', text: item.text ?? '' }];
  return { id: item.id, object: 'realtime.item', type: 'message', status: item.status, role: item.role, content };
}

/** The turn detection shown back, with every default filled in (clients read `interrupt_response` from it). */
export function filledTurnDetection(detection: TurnDetectionConfig, current: TurnDetectionConfig, base: { activationThreshold: number; preRollMs: number; endpointMs: number }): TurnDetectionConfig {
  if (detection === null) return null;
  if (detection.type === 'semantic_vad') return { eagerness: 'auto', create_response: true, interrupt_response: true, ...detection };
  const now = current?.type === 'server_vad' ? current : null;
  return {
    threshold: now?.threshold ?? base.activationThreshold,
    prefix_padding_ms: now?.prefix_padding_ms ?? base.preRollMs,
    silence_duration_ms: now?.silence_duration_ms ?? base.endpointMs,
    create_response: true,
    interrupt_response: true,
    idle_timeout_ms: null,
    ...detection,
  };
}

/**
 * The endpointer's silences that close a turn (adaptive endpointing picks among them by the transcript
 * and the turn model's verdict), the model's threshold and its incomplete wait.
 */
export type EndpointSilence = Pick<EndpointerOptions, 'endpointMs' | 'minEndpointMs' | 'maxEndpointMs' | 'turnThreshold' | 'turnIncompleteMs'>;

/** The endpointer's own settings that server_vad's numbers default to (the config shown carries them). */
export type EndpointBase = EndpointSilence & Partial<Pick<EndpointerOptions, 'activationThreshold' | 'preRollMs'>>;

/**
 * The core's turn detection for a Realtime one. server_vad's numbers go to the endpointer when they
 * differ from its own (the config shown back carries those, so a client that sends it back changes
 * nothing); a `silence_duration_ms` of the client's own is a fixed silence, as OpenAI's server VAD
 * has (adaptive endpointing off). semantic_vad keeps adaptive endpointing with the turn model, its eagerness
 * making every silence longer (low, 3x), as it is (medium, auto) or shorter (high, 0.6x), and moving the
 * probability the model needs to call a turn complete up (low, +0.2) or down (high, -0.2). null is manual turns.
 */
export function coreTurnDetection(detection: TurnDetectionConfig, base: EndpointBase): TurnDetection {
  if (detection === null) return { mode: 'manual', vad: {}, createResponse: false, interruptResponse: false };
  const switches = { createResponse: detection.create_response ?? true, interruptResponse: detection.interrupt_response ?? true };
  if (detection.type === 'semantic_vad') {
    const eagerness = detection.eagerness ?? 'auto';
    const scale = { low: 3, medium: 1, auto: 1, high: 0.6 }[eagerness];
    const shift = { low: 0.2, medium: 0, auto: 0, high: -0.2 }[eagerness];
    const scaled = (ms: number, max = 5_000) => Math.min(max, Math.max(32, Math.round(ms * scale)));
    const vad =
      scale === 1
        ? {}
        : {
            adaptive: true,
            endpointMs: scaled(base.endpointMs),
            minEndpointMs: scaled(base.minEndpointMs),
            maxEndpointMs: scaled(base.maxEndpointMs),
            turnThreshold: Math.min(0.95, Math.max(0.05, Math.round((base.turnThreshold + shift) * 100) / 100)),
            turnIncompleteMs: scaled(base.turnIncompleteMs, 10_000),
          };
    return { mode: 'vad', vad, ...switches };
  }
  const vad: TurnDetection['vad'] = {};
  if (detection.threshold !== undefined && detection.threshold !== base.activationThreshold) {
    vad.activationThreshold = detection.threshold;
    vad.releaseThreshold = Math.max(0, Math.round((detection.threshold - 0.15) * 100) / 100);
  }
  if (detection.prefix_padding_ms !== undefined && detection.prefix_padding_ms !== base.preRollMs) vad.preRollMs = detection.prefix_padding_ms;
  if (detection.silence_duration_ms !== undefined && detection.silence_duration_ms !== base.endpointMs) {
    vad.endpointMs = Math.max(32, detection.silence_duration_ms);
    vad.adaptive = false;
  }
  return { mode: 'vad', vad, ...switches };
}
