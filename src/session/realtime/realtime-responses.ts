/**
 * The Realtime adapter's outbound side: the response lifecycle. A response is asked for
 * (`response.create`) or started by the server (turn detection with `create_response`), announced
 * with `response.created`, fills in as the core's answer goes (message, text, audio, function
 * calls) and always ends with `response.done`, also when cut or failed. The session
 * (realtime-session.ts) routes client events and the core's answer events here.
 */
import type { TurnMetrics } from '../../pipeline/events.js';
import { InvalidInputError } from '../../errors.js';
import type { ToolChoice } from '../../llm/tools.js';
import type { ConversationItem } from '../conversation-items.js';
import type { CoreEvent } from '../core-types.js';
import { newId } from '../ids.js';
import type { SessionCore } from '../session-core.js';
import type { OutputAudio } from './audio-codec.js';
import type { AudioFormat, ClientEvent } from './client-events.js';
import type { RealtimeConfig } from './realtime-config.js';
import { coreToolChoice, renderItem, type Json } from './realtime-mappings.js';
import { resolveVoice } from './voices.js';

/** One response from `response.created` to `response.done`; `output` holds its items in the order they appeared. */
interface ResponseRecord {
  id: string;
  /** The core's answer id, once the answer started. */
  answerId: string | null;
  metadata: Json | null;
  speak: boolean;
  format: AudioFormat;
  voice: string;
  maxOutputTokens: number | 'inf';
  output: Json[];
  /** The answer's assistant message, once it appeared (an answer that only calls a function has none). */
  message: { id: string; outputIndex: number } | null;
}

/** What the responses need from their session. */
export interface ResponsesHost {
  core: SessionCore;
  output: OutputAudio;
  defaultVoice: string;
  /** The conversation's id, shown in each response. */
  conversationId: string;
  /** The session's effective config as it is now. */
  config(): Readonly<RealtimeConfig>;
  send(type: string, fields: Json): void;
  error(type: string, code: string, message: string, param: string | null, clientEventId: string | null): void;
  /** An answer's response is done (server_vad's idle timeout runs from here). */
  answerDone(): void;
}

export class RealtimeResponses {
  readonly #host: ResponsesHost;
  /** The response announced with `response.created` and not yet done. */
  #response: ResponseRecord | null = null;
  /** Responses the client asked for, by the core's answer id, until they start. */
  readonly #requested = new Map<string, ResponseRecord>();

  constructor(host: ResponsesHost) {
    this.#host = host;
  }

  /** A response is in progress (announced and not done). */
  get inProgress(): boolean {
    return this.#response !== null;
  }

  /** `response.create`: asks the core for an answer and announces its response at once. */
  create(event: Extract<ClientEvent, { type: 'response.create' }>, eventId: string | null): void {
    const { core } = this.#host;
    const config = this.#host.config();
    if (this.#response || core.answering) {
      return this.#host.error(
        'invalid_request_error',
        'conversation_already_has_active_response',
        `Conversation already has an active response in progress: ${this.#response?.id ?? 'an answer'}. Wait until the response is finished before creating a new one.`,
        null,
        eventId,
      );
    }
    const request = event.response ?? {};
    // Asked for and not done is refused by name, never accepted and ignored.
    if (request.conversation !== undefined && request.conversation !== 'auto') {
      return this.#host.error('invalid_request_error', 'unsupported_value', `response.create: conversation "${request.conversation}" is not supported: out-of-band responses are not implemented; every response joins the conversation ("auto")`, 'response.conversation', eventId);
    }
    for (const field of ['tools', 'input', 'prompt'] as const) {
      if ((request as Json)[field] !== undefined) {
        return this.#host.error('invalid_request_error', 'unsupported_value', `response.create: per-response ${field} is not supported; set it with session.update`, `response.${field}`, eventId);
      }
    }
    let toolChoice: ToolChoice | undefined;
    if (request.tool_choice !== undefined) {
      toolChoice = coreToolChoice(request.tool_choice);
      try {
        core.settings.tools?.functions(toolChoice);
      } catch (error) {
        if (!(error instanceof InvalidInputError)) throw error;
        return this.#host.error('invalid_request_error', 'invalid_value', `response.create: ${error.message}`, 'response.tool_choice', eventId);
      }
      if (typeof toolChoice === 'object' && !core.settings.tools?.functions('auto')) {
        return this.#host.error('invalid_request_error', 'invalid_value', `response.create: tool_choice names "${toolChoice.name}" but the session has no tools`, 'response.tool_choice', eventId);
      }
    }
    const voiceName = request.audio?.output?.voice ?? config.voice;
    const voice = resolveVoice(voiceName, core.voices, this.#host.defaultVoice);
    if (voice === null) return this.#host.error('invalid_request_error', 'invalid_value', `unknown voice "${voiceName}"`, 'response.audio.output.voice', eventId);
    const modalities = request.output_modalities ?? config.outputModalities;
    const maxOutputTokens = request.max_output_tokens ?? config.maxOutputTokens;
    const speak = modalities.includes('audio');
    const answerId = core.requestAnswer({
      voice,
      speak,
      ...(request.instructions !== undefined && { instructions: request.instructions }),
      ...(maxOutputTokens !== 'inf' && { maxTokens: maxOutputTokens }),
      ...(toolChoice !== undefined && { toolChoice }),
    });
    const record = this.#newResponse({ metadata: request.metadata ?? null, speak, format: request.audio?.output?.format ?? config.outputFormat, voice: voiceName, maxOutputTokens });
    this.#requested.set(answerId, record);
    this.#announce(record);
  }

  /** `response.cancel`: cuts the answer in progress, or withdraws a response asked for that has not started. */
  cancel(): void {
    const { core } = this.#host;
    // Nothing active is not an error worth a client's crash: the API's own code, quietly logged.
    if (!core.cancelAnswer() && this.#response && this.#response.answerId === null) {
      // Asked for but not started: it is done, cancelled, and withdrawn from the core, so it never starts.
      for (const [answerId, record] of this.#requested) if (record === this.#response) core.withdrawAnswer(answerId);
      this.#finish(this.#response, 'cancelled', { type: 'cancelled', reason: 'client_cancelled' }, null);
    }
  }

  /** The core's answer events, routed here by the session. */
  onAnswerEvent(event: Extract<CoreEvent, { type: 'answer_start' | 'answer_message' | 'answer_text' | 'function_call' | 'answer_done' }>): void {
    switch (event.type) {
      case 'answer_start':
        return this.#onAnswerStart(event);
      case 'answer_message':
        return this.#onAnswerMessage(event);
      case 'answer_text': {
        const response = this.#response;
        if (!response?.message || response.answerId !== event.answerId) return;
        const where = { response_id: response.id, item_id: event.itemId, output_index: response.message.outputIndex, content_index: 0, delta: event.delta };
        return this.#host.send(response.speak ? 'response.output_audio_transcript.delta' : 'response.output_text.delta', where);
      }
      case 'function_call':
        return this.#onFunctionCall(event);
      case 'answer_done':
        return this.#onAnswerDone(event);
    }
  }

  /** The answer's audio as it leaves the core. */
  onAudio(pcm: Int16Array): void {
    const record = this.#response;
    if (!record?.message || !record.speak) return;
    for (const delta of this.#host.output.encode(pcm, record.format)) this.#sendAudioDelta(record, record.message, delta);
  }

  #newResponse(fields: Pick<ResponseRecord, 'metadata' | 'speak' | 'format' | 'voice' | 'maxOutputTokens'>): ResponseRecord {
    return { id: newId('resp'), answerId: null, output: [], message: null, ...fields };
  }

  /** `response.created`: the response is in progress from now until its `response.done`. */
  #announce(record: ResponseRecord): void {
    this.#response = record;
    this.#host.send('response.created', { response: this.#responseJson(record, 'in_progress', null, null) });
  }

  #onAnswerStart(event: Extract<CoreEvent, { type: 'answer_start' }>): void {
    let record = this.#requested.get(event.answerId);
    this.#requested.delete(event.answerId);
    if (!record) {
      // An answer the server started itself (turn detection with create_response).
      const config = this.#host.config();
      record = this.#newResponse({ metadata: null, speak: event.speak, format: config.outputFormat, voice: config.voice, maxOutputTokens: config.maxOutputTokens });
      this.#announce(record);
    } else if (this.#response !== record) {
      this.#announce(record);
    }
    record.answerId = event.answerId;
  }

  /** The answer's message appeared (its first words, or its end when it said nothing and called nothing): it joins the response's output here. */
  #onAnswerMessage(event: Extract<CoreEvent, { type: 'answer_message' }>): void {
    const record = this.#response;
    if (!record || record.answerId !== event.answerId) return;
    const outputIndex = record.output.length;
    record.message = { id: event.item.id, outputIndex };
    const item = renderItem(event.item);
    record.output.push(item);
    const where = { response_id: record.id, item_id: event.item.id, output_index: outputIndex, content_index: 0 };
    this.#host.send('response.output_item.added', { response_id: record.id, output_index: outputIndex, item });
    this.#host.send('conversation.item.added', { item, previous_item_id: event.previousItemId });
    this.#host.send('response.content_part.added', { ...where, part: record.speak ? { type: 'audio', transcript: '' } : { type: 'text', text: '' } });
  }

  /**
   * A function call joins the response as its own output item. Its arguments were checked against
   * the tool's schema before they got here, so they go out whole: one delta, then done.
   */
  #onFunctionCall(event: Extract<CoreEvent, { type: 'function_call' }>): void {
    const record = this.#response;
    if (!record || record.answerId !== event.answerId || !event.item.functionCall) return;
    const { callId, name, arguments: args } = event.item.functionCall;
    const outputIndex = record.output.length;
    const item = renderItem(event.item);
    record.output.push(item);
    const where = { response_id: record.id, item_id: event.item.id, output_index: outputIndex, call_id: callId };
    const send = this.#host.send;
    send('response.output_item.added', { response_id: record.id, output_index: outputIndex, item: { ...item, status: 'in_progress', arguments: '' } });
    send('conversation.item.added', { item: { ...item, status: 'in_progress', arguments: '' }, previous_item_id: event.previousItemId });
    send('response.function_call_arguments.delta', { ...where, delta: args });
    send('response.function_call_arguments.done', { ...where, name, arguments: args });
    send('response.output_item.done', { response_id: record.id, output_index: outputIndex, item });
    send('conversation.item.done', { item });
  }

  #sendAudioDelta(record: ResponseRecord, message: NonNullable<ResponseRecord['message']>, delta: Buffer): void {
    this.#host.send('response.output_audio.delta', { response_id: record.id, item_id: message.id, output_index: message.outputIndex, content_index: 0, delta: delta.toString('base64') });
  }

  #onAnswerDone(event: Extract<CoreEvent, { type: 'answer_done' }>): void {
    const record = this.#response;
    if (!record || record.answerId !== event.answerId) return;
    // The message closes if it appeared; an answer that only called a function closed its call already.
    if (record.message) this.#closeMessage(record, record.message, event.item, event.status === 'completed');
    this.#host.answerDone();
    if (event.status === 'completed') this.#finish(record, 'completed', null, event.metrics);
    else if (event.status === 'failed') this.#finish(record, 'failed', { type: 'failed', error: { type: 'server_error', code: 'answer_failed', message: event.error } }, event.metrics);
    else this.#finish(record, 'cancelled', { type: 'cancelled', reason: event.status === 'interrupted' ? 'turn_detected' : 'client_cancelled' }, event.metrics);
  }

  #closeMessage(record: ResponseRecord, message: NonNullable<ResponseRecord['message']>, done: ConversationItem, completed: boolean): void {
    const text = done.text ?? '';
    const where = { response_id: record.id, item_id: message.id, output_index: message.outputIndex, content_index: 0 };
    const send = this.#host.send;
    if (record.speak) {
      // The converter's tail is sent after a finished answer; after a cut one it is dropped, so the
      // cut answer's last words do not open the next one.
      const tail = this.#host.output.finish(record.format);
      if (completed) for (const delta of tail) this.#sendAudioDelta(record, message, delta);
      send('response.output_audio.done', where);
      send('response.output_audio_transcript.done', { ...where, transcript: text });
      send('response.content_part.done', { ...where, part: { type: 'audio', transcript: text } });
    } else {
      send('response.output_text.done', { ...where, text });
      send('response.content_part.done', { ...where, part: { type: 'text', text } });
    }
    const item = renderItem(done);
    record.output[message.outputIndex] = item;
    send('response.output_item.done', { response_id: record.id, output_index: message.outputIndex, item });
    send('conversation.item.done', { item });
  }

  #finish(record: ResponseRecord, status: string, details: Json | null, metrics: TurnMetrics | null): void {
    if (this.#response === record) this.#response = null;
    if (record.answerId === null) for (const [id, r] of this.#requested) if (r === record) this.#requested.delete(id);
    this.#host.send('response.done', { response: this.#responseJson(record, status, details, metrics) });
  }

  #responseJson(record: ResponseRecord, status: string, details: Json | null, metrics: TurnMetrics | null): Json {
    const input = metrics?.llm_tokens_in ?? 0;
    const output = metrics?.llm_tokens_out ?? 0;
    return {
      id: record.id,
      object: 'realtime.response',
      status,
      status_details: details,
      output: record.output,
      conversation_id: this.#host.conversationId,
      output_modalities: record.speak ? ['audio'] : ['text'],
      max_output_tokens: record.maxOutputTokens,
      audio: { output: { format: record.format, voice: record.voice } },
      metadata: record.metadata,
      usage: metrics
        ? {
            total_tokens: input + output,
            input_tokens: input,
            output_tokens: output,
            input_token_details: { text_tokens: input, audio_tokens: 0, cached_tokens: 0 },
            output_token_details: { text_tokens: output, audio_tokens: 0 },
          }
        : null,
    };
  }
}
