/**
 * The OpenAI Realtime API (GA dialect, REALTIME.md) over the session core: JSON events both ways,
 * audio as base64 in `input_audio_buffer.append` and `response.output_audio.delta`. This adapter
 * decodes, encodes and keeps the protocol's bookkeeping (event ids, responses, effective config);
 * turns, barge-in, pacing, answers, items and limits live in `SessionCore`, shared with `/ws`.
 *
 * Every response is bracketed by `response.created` and `response.done`, also when cut or failed.
 * Errors go out in the documented shape only for real errors (a client without an error listener
 * dies of one): cancelling with nothing active, truncating past the end and retrieving an unknown
 * item are answered quietly.
 */
import type { WebSocket } from 'ws';
import { errorMessage, type Logger } from '../../log/logger.js';
import type { Conversation } from '../../llm/llm.js';
import type { Engines } from '../../pipeline/engines.js';
import type { TurnMetrics } from '../../pipeline/events.js';
import { newId } from '../ids.js';
import { SessionCore, type ConversationItem, type CoreEvent, type SessionCoreOptions, type SessionSummary } from '../session-core.js';
import { InputAudio, OutputAudio } from './audio-codec.js';
import { InvalidInputError } from '../../errors.js';
import { ToolSet, type ToolChoice } from '../../llm/tools.js';
import {
  CLIENT_EVENT_TYPES,
  clientEventSchema,
  describeIssues,
  functionCallOutputItemSchema,
  messageItemSchema,
  type AudioFormat,
  type ClientEvent,
  type SessionConfigUpdate,
  type ToolChoiceConfig,
  type TurnDetectionConfig,
} from './client-events.js';
import { coreToolChoice, coreTurnDetection, realtimeErrorEvent, renderItem, type EndpointSilence } from './realtime-mappings.js';
import { resolveVoice } from './voices.js';

/** Larger text frames are refused with an error event (the socket itself allows up to REALTIME_MAX_PAYLOAD_BYTES). */
export const MAX_CLIENT_EVENT_BYTES = 1024 * 1024;
/** Frames above this close the socket (1009), as `ws` must: they are never read into memory whole. */
export const REALTIME_MAX_PAYLOAD_BYTES = 8 * 1024 * 1024;

export interface RealtimeSessionOptions extends SessionCoreOptions {
  /** The system prompt the session was opened with, shown as `instructions` until a client sets its own. */
  instructions: string;
  /** The model name the client asked for (shown back; the worker's models answer). */
  model: string;
}

type Json = Record<string, unknown>;

/** The effective session config (what `session.created`/`session.updated` show), in the API's terms. */
interface RealtimeConfig {
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

/** A speech start during an answer is held until the core judges it: an interruption is announced, a blip never is. */
interface HeldSpeech {
  started: Json;
  stopped: Json | null;
}

export class RealtimeSession {
  readonly #ws: WebSocket;
  readonly #core: SessionCore;
  readonly #log: Logger;
  readonly #options: RealtimeSessionOptions;
  readonly #input: InputAudio;
  readonly #output: OutputAudio;
  readonly #defaultVoice: string;
  readonly #sessionId = newId('sess');
  #config: RealtimeConfig;
  #eventCount = 0;
  /** The response announced with `response.created` and not yet done. */
  #response: ResponseRecord | null = null;
  /** Responses the client asked for, by the core's answer id, until they start. */
  readonly #requested = new Map<string, ResponseRecord>();
  #held: HeldSpeech | null = null;
  /** server_vad's idle_timeout_ms: runs from the end of an answer's audio until the user speaks. */
  #idleTimer: NodeJS.Timeout | null = null;
  /** The endpointer's settings before any client change: what turn detection defaults and scales from. */
  readonly #baseEndpointer: { activationThreshold: number; preRollMs: number } & EndpointSilence;

  private constructor(ws: WebSocket, core: SessionCore, options: RealtimeSessionOptions, log: Logger, input: InputAudio, output: OutputAudio, defaultVoice: string) {
    this.#ws = ws;
    this.#core = core;
    this.#options = options;
    this.#log = log;
    this.#input = input;
    this.#output = output;
    this.#defaultVoice = defaultVoice;
    const endpointer = core.endpointerOptions;
    this.#baseEndpointer = {
      activationThreshold: endpointer.activationThreshold,
      preRollMs: endpointer.preRollMs,
      endpointMs: endpointer.endpointMs,
      minEndpointMs: endpointer.minEndpointMs,
      maxEndpointMs: endpointer.maxEndpointMs,
    };
    this.#config = {
      instructions: options.instructions,
      outputModalities: ['audio'],
      maxOutputTokens: 'inf',
      inputFormat: { type: 'audio/pcm', rate: 24_000 },
      outputFormat: { type: 'audio/pcm', rate: 24_000 },
      transcription: null,
      noiseReduction: null,
      // Our endpointer's own settings, so the config shown is the one in force.
      turnDetection: {
        type: 'server_vad',
        threshold: endpointer.activationThreshold,
        prefix_padding_ms: endpointer.preRollMs,
        silence_duration_ms: endpointer.endpointMs,
        create_response: true,
        interrupt_response: true,
        idle_timeout_ms: null,
      },
      voice: options.voice,
      speed: 1,
      tools: [],
      toolChoice: 'auto',
    };
  }

  /** A session on an accepted socket; `run()` starts it. */
  static async open(
    ws: WebSocket,
    engines: Engines,
    conversation: Conversation,
    options: RealtimeSessionOptions,
    log: Logger,
    signal: AbortSignal,
    shutdown?: AbortSignal,
  ): Promise<RealtimeSession> {
    const [input, output] = await Promise.all([InputAudio.create(), OutputAudio.create()]);
    let session: RealtimeSession | null = null;
    const core = new SessionCore(
      engines,
      conversation,
      options,
      log,
      {
        event: (event) => session!.#onCoreEvent(event),
        audio: (pcm) => session!.#onCoreAudio(pcm),
        ended: (summary) => session!.#onEnded(summary),
        unreadBytes: () => ws.bufferedAmount,
      },
      signal,
      shutdown,
    );
    session = new RealtimeSession(ws, core, options, log, input, output, engines.tts.defaultVoice);
    return session;
  }

  /** Starts the conversation; resolves when it ends, with what a bill is made of. */
  run(): Promise<SessionSummary> {
    this.#ws.on('error', (error) => this.#log.warn('realtime socket error', { error: error.message }));
    this.#ws.on('message', (data, isBinary) => this.#onMessageGuarded(data as Buffer, isBinary));
    this.#ws.on('close', () => this.#core.end('client_left'));
    const ended = this.#core.run().finally(() => this.#disarmIdleTimeout());
    // The client may have left while the session was being set up.
    if (this.#ws.readyState !== this.#ws.OPEN) this.#core.end('client_left');
    this.#send('session.created', { session: this.#sessionJson() });
    return ended;
  }

  // ---- client -> core ------------------------------------------------------------------------

  /** No exception from one client's event may leave the handler: at most it ends that session. */
  #onMessageGuarded(data: Buffer, isBinary: boolean): void {
    try {
      this.#onMessage(data, isBinary);
    } catch (error) {
      this.#log.error('realtime event handling failed', { session_id: this.#core.id, error: errorMessage(error) });
      this.#error('server_error', 'internal_error', errorMessage(error), null, null);
      this.#core.end('error');
    }
  }

  #onMessage(data: Buffer, isBinary: boolean): void {
    if (this.#core.isEnded) return;
    this.#core.touch();
    if (isBinary) return this.#error('invalid_request_error', 'invalid_message', 'binary frames are not part of the Realtime API: send JSON events (audio as base64 in input_audio_buffer.append)', null, null);
    if (data.byteLength > MAX_CLIENT_EVENT_BYTES) {
      return this.#error('invalid_request_error', 'event_too_large', `client events must be at most ${MAX_CLIENT_EVENT_BYTES} bytes; this one has ${data.byteLength} (send audio in smaller appends)`, null, null);
    }
    let json: unknown;
    try {
      json = JSON.parse(data.toString());
    } catch (error) {
      return this.#error('invalid_request_error', 'invalid_json', `the event is not valid JSON: ${errorMessage(error)}`, null, null);
    }
    const clientEventId = typeof (json as Json | null)?.['event_id'] === 'string' ? ((json as Json)['event_id'] as string) : null;
    const parsed = clientEventSchema.safeParse(json);
    if (!parsed.success) {
      const type = (json as Json | null)?.['type'];
      if (typeof type !== 'string' || !CLIENT_EVENT_TYPES.includes(type as never)) {
        const name = typeof type === 'string' ? `"${type}"` : 'missing';
        return this.#error('invalid_request_error', 'invalid_value', `unknown event type ${name}; known types: ${CLIENT_EVENT_TYPES.join(', ')}`, 'type', clientEventId);
      }
      const { message, param } = describeIssues(parsed.error);
      return this.#error('invalid_request_error', 'invalid_value', `invalid ${type}: ${message}`, param, clientEventId);
    }
    this.#handle(parsed.data, clientEventId);
  }

  #handle(event: ClientEvent, eventId: string | null): void {
    switch (event.type) {
      case 'session.update':
        return this.#updateSession(event.session, eventId);
      case 'input_audio_buffer.append': {
        let pcm: Int16Array;
        try {
          pcm = this.#input.decode(event.audio, this.#config.inputFormat);
        } catch (error) {
          return this.#error('invalid_request_error', 'invalid_audio', `input_audio_buffer.append: ${errorMessage(error)} (the session's input format is ${this.#config.inputFormat.type})`, 'audio', eventId);
        }
        if (pcm.length > 0) this.#core.pushAudio(pcm);
        return;
      }
      case 'input_audio_buffer.commit': {
        const itemId = this.#core.commitAudio();
        if (itemId === null) this.#error('invalid_request_error', 'input_audio_buffer_commit_empty', 'Error committing input audio buffer: the buffer holds no audio (or no speech in progress).', null, eventId);
        return;
      }
      case 'input_audio_buffer.clear':
        this.#core.clearAudio();
        return this.#send('input_audio_buffer.cleared', {});
      case 'conversation.item.create':
        return this.#createItem(event, eventId);
      case 'conversation.item.delete':
        if (this.#core.deleteItem(event.item_id)) return this.#send('conversation.item.deleted', { item_id: event.item_id });
        return this.#error('invalid_request_error', 'item_not_found', `conversation.item.delete: no item with id "${event.item_id}"`, 'item_id', eventId);
      case 'conversation.item.retrieve': {
        const item = this.#core.items.find((i) => i.id === event.item_id);
        if (item) this.#send('conversation.item.retrieved', { item: renderItem(item) });
        return;
      }
      case 'conversation.item.truncate': {
        const audioEndMs = this.#core.truncateItem(event.item_id, event.audio_end_ms);
        if (audioEndMs === null) return this.#log.debug('truncate of an unknown item ignored', { item_id: event.item_id });
        return this.#send('conversation.item.truncated', { item_id: event.item_id, content_index: event.content_index ?? 0, audio_end_ms: Math.round(audioEndMs) });
      }
      case 'response.create':
        return this.#createResponse(event, eventId);
      case 'response.cancel':
        // Nothing active is not an error worth a client's crash: the API's own code, quietly logged.
        if (!this.#core.cancelAnswer() && this.#response && this.#response.answerId === null) {
          // Asked for but not started: it is done, cancelled, and withdrawn from the core, so it never starts.
          for (const [answerId, record] of this.#requested) if (record === this.#response) this.#core.withdrawAnswer(answerId);
          this.#finishResponse(this.#response, 'cancelled', { type: 'cancelled', reason: 'client_cancelled' }, null);
        }
        return;
    }
  }

  #updateSession(update: SessionConfigUpdate, eventId: string | null): void {
    const next: RealtimeConfig = { ...this.#config };
    if (update.instructions !== undefined) next.instructions = update.instructions;
    if (update.output_modalities !== undefined) next.outputModalities = update.output_modalities.includes('audio') ? ['audio'] : ['text'];
    if (update.max_output_tokens !== undefined) next.maxOutputTokens = update.max_output_tokens;
    if (update.tools !== undefined) next.tools = update.tools;
    if (update.tool_choice !== undefined) next.toolChoice = update.tool_choice;
    // Tools are checked once, here, when they change: a bad schema is the client's error, not a
    // failed answer later. An update of anything else keeps the compiled set.
    let tools: ToolSet;
    let toolChoice: ToolChoice;
    try {
      const current = this.#core.settings.tools;
      tools = update.tools === undefined && current ? current : ToolSet.compile(next.tools as { name: string; description?: string; parameters?: Json }[]);
      toolChoice = coreToolChoice(next.toolChoice);
      tools.functions(toolChoice);
    } catch (error) {
      if (!(error instanceof InvalidInputError)) throw error;
      return this.#error('invalid_request_error', 'invalid_value', `session.update: ${error.message}`, update.tools !== undefined ? 'session.tools' : 'session.tool_choice', eventId);
    }
    const input = update.audio?.input;
    const output = update.audio?.output;
    if (input?.format !== undefined) next.inputFormat = input.format;
    if (input?.transcription !== undefined) next.transcription = input.transcription;
    if (input?.noise_reduction !== undefined) next.noiseReduction = input.noise_reduction;
    if (input?.turn_detection !== undefined) next.turnDetection = this.#fillTurnDetection(input.turn_detection);
    if (output?.format !== undefined) next.outputFormat = output.format;
    if (output?.speed !== undefined) next.speed = output.speed;
    if (output?.voice !== undefined) {
      if (resolveVoice(output.voice, this.#core.voices, this.#defaultVoice) === null) {
        return this.#error('invalid_request_error', 'invalid_value', `unknown voice "${output.voice}"; use an OpenAI voice name or one of: ${this.#core.voices.join(', ')}`, 'session.audio.output.voice', eventId);
      }
      next.voice = output.voice;
    }
    this.#config = next;
    this.#core.configure({
      voice: resolveVoice(next.voice, this.#core.voices, this.#defaultVoice)!,
      maxTokens: next.maxOutputTokens === 'inf' ? this.#options.maxTokens : next.maxOutputTokens,
      instructions: next.instructions === this.#options.instructions ? undefined : next.instructions,
      speak: next.outputModalities.includes('audio'),
      tools,
      toolChoice,
    });
    this.#core.setTurnDetection(coreTurnDetection(next.turnDetection, this.#baseEndpointer));
    this.#send('session.updated', { session: this.#sessionJson() });
  }

  /** The turn detection shown back, with every default filled in (clients read `interrupt_response` from it). */
  #fillTurnDetection(detection: TurnDetectionConfig): TurnDetectionConfig {
    if (detection === null) return null;
    if (detection.type === 'semantic_vad') return { eagerness: 'auto', create_response: true, interrupt_response: true, ...detection };
    const current = this.#config.turnDetection?.type === 'server_vad' ? this.#config.turnDetection : null;
    const defaults = this.#baseEndpointer;
    return {
      threshold: current?.threshold ?? defaults.activationThreshold,
      prefix_padding_ms: current?.prefix_padding_ms ?? defaults.preRollMs,
      silence_duration_ms: current?.silence_duration_ms ?? defaults.endpointMs,
      create_response: true,
      interrupt_response: true,
      idle_timeout_ms: null,
      ...detection,
    };
  }

  #createItem(event: Extract<ClientEvent, { type: 'conversation.item.create' }>, eventId: string | null): void {
    if (event.item.type === 'function_call_output') {
      const parsed = functionCallOutputItemSchema.safeParse(event.item);
      if (!parsed.success) {
        const { message, param } = describeIssues(parsed.error);
        return this.#error('invalid_request_error', 'invalid_value', `conversation.item.create: ${message}`, param && `item.${param}`, eventId);
      }
      const { id, call_id: callId, output } = parsed.data;
      const added = this.#core.addFunctionOutput({ ...(id !== undefined && { id }), callId, output }, event.previous_item_id);
      if (typeof added === 'string') this.#error('invalid_request_error', 'invalid_value', `conversation.item.create: ${added}`, 'item.call_id', eventId);
      return;
    }
    if (event.item.type !== 'message') {
      return this.#error('invalid_request_error', 'invalid_value', `conversation.item.create: items of type "${event.item.type}" are not supported yet (messages only)`, 'item.type', eventId);
    }
    const parsed = messageItemSchema.safeParse(event.item);
    if (!parsed.success) {
      const { message, param } = describeIssues(parsed.error);
      return this.#error('invalid_request_error', 'invalid_value', `conversation.item.create: ${message}`, param && `item.${param}`, eventId);
    }
    const item = parsed.data;
    const texts = item.content.map((part) => ('text' in part ? part.text : (part.transcript ?? '')));
    if (item.content.some((part) => 'audio' in part && part.audio)) {
      return this.#error('invalid_request_error', 'invalid_value', 'conversation.item.create: audio content is not supported yet; send input_text, or a transcript', 'item.content', eventId);
    }
    const added = this.#core.addItem({ id: item.id, role: item.role, text: texts.join(' ') }, event.previous_item_id);
    if (typeof added === 'string') this.#error('invalid_request_error', 'invalid_value', `conversation.item.create: ${added}`, 'previous_item_id', eventId);
  }

  #createResponse(event: Extract<ClientEvent, { type: 'response.create' }>, eventId: string | null): void {
    if (this.#response || this.#core.answering) {
      return this.#error(
        'invalid_request_error',
        'conversation_already_has_active_response',
        `Conversation already has an active response in progress: ${this.#response?.id ?? 'an answer'}. Wait until the response is finished before creating a new one.`,
        null,
        eventId,
      );
    }
    const request = event.response ?? {};
    const voiceName = request.audio?.output?.voice ?? this.#config.voice;
    const voice = resolveVoice(voiceName, this.#core.voices, this.#defaultVoice);
    if (voice === null) return this.#error('invalid_request_error', 'invalid_value', `unknown voice "${voiceName}"`, 'response.audio.output.voice', eventId);
    const modalities = request.output_modalities ?? this.#config.outputModalities;
    const maxOutputTokens = request.max_output_tokens ?? this.#config.maxOutputTokens;
    const speak = modalities.includes('audio');
    const answerId = this.#core.requestAnswer({
      voice,
      speak,
      ...(request.instructions !== undefined && { instructions: request.instructions }),
      ...(maxOutputTokens !== 'inf' && { maxTokens: maxOutputTokens }),
    });
    const record = this.#newResponse({ metadata: request.metadata ?? null, speak, format: request.audio?.output?.format ?? this.#config.outputFormat, voice: voiceName, maxOutputTokens });
    this.#requested.set(answerId, record);
    this.#announce(record);
  }

  // ---- core -> client ------------------------------------------------------------------------

  #onCoreEvent(event: CoreEvent): void {
    switch (event.type) {
      case 'speech_start': {
        this.#disarmIdleTimeout();
        const started = { audio_start_ms: Math.round(event.atMs), item_id: event.itemId };
        if (event.duringAnswer && this.#core.turnDetection.interruptResponse) this.#held = { started, stopped: null };
        else this.#send('input_audio_buffer.speech_started', started);
        return;
      }
      case 'speech_end': {
        const stopped = { audio_end_ms: Math.round(event.endMs), item_id: event.itemId };
        if (this.#held) this.#held.stopped = stopped;
        else this.#send('input_audio_buffer.speech_stopped', stopped);
        return;
      }
      case 'paused':
        return;
      case 'resumed':
        this.#held = null; // a blip: the client never hears of it
        return;
      case 'interrupted':
        if (event.by === 'interrupted') this.#releaseHeldSpeech();
        return;
      case 'item_added':
        return this.#onItemAdded(event.item, event.previousItemId);
      case 'transcript':
        if (event.spoken && this.#config.transcription !== null) {
          this.#send('conversation.item.input_audio_transcription.completed', {
            item_id: event.itemId,
            content_index: 0,
            transcript: event.text,
            usage: { type: 'duration', seconds: 0 },
          });
        }
        return;
      case 'answer_start':
        return this.#onAnswerStart(event);
      case 'answer_message':
        return this.#onAnswerMessage(event);
      case 'answer_text': {
        const response = this.#response;
        if (!response?.message || response.answerId !== event.answerId) return;
        const where = { response_id: response.id, item_id: event.itemId, output_index: response.message.outputIndex, content_index: 0, delta: event.delta };
        return this.#send(response.speak ? 'response.output_audio_transcript.delta' : 'response.output_text.delta', where);
      }
      case 'function_call':
        return this.#onFunctionCall(event);
      case 'answer_done':
        return this.#onAnswerDone(event);
      case 'error':
        return this.#error('server_error', event.code.toLowerCase(), event.message, null, null);
    }
  }

  /**
   * server_vad's `idle_timeout_ms`: when the user says nothing for that long after an answer has
   * played out, the server says so (`input_audio_buffer.timeout_triggered`) and answers again from
   * the conversation so far, as a phone agent re-prompts a silent caller. Speech disarms it.
   */
  #armIdleTimeout(): void {
    this.#disarmIdleTimeout();
    const detection = this.#config.turnDetection;
    if (detection?.type !== 'server_vad' || !detection.idle_timeout_ms || this.#core.isEnded) return;
    const armedAtMs = this.#core.heardMs;
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = null;
      if (this.#response || this.#core.answering || this.#core.isEnded) return;
      this.#send('input_audio_buffer.timeout_triggered', { audio_start_ms: Math.round(armedAtMs), audio_end_ms: Math.round(this.#core.heardMs), item_id: null });
      this.#createResponse({ type: 'response.create' }, null);
    }, detection.idle_timeout_ms);
  }

  #disarmIdleTimeout(): void {
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
  }

  #releaseHeldSpeech(): void {
    const held = this.#held;
    this.#held = null;
    if (!held) return;
    this.#send('input_audio_buffer.speech_started', held.started);
    if (held.stopped) this.#send('input_audio_buffer.speech_stopped', held.stopped);
  }

  #onItemAdded(item: ConversationItem, previousItemId: string | null): void {
    if (item.role === 'user' && item.modality === 'audio') {
      // A speech turn that closed while held was an interruption after all (the core cut the answer first).
      this.#releaseHeldSpeech();
      this.#send('input_audio_buffer.committed', { item_id: item.id, previous_item_id: previousItemId });
    }
    const rendered = renderItem(item);
    this.#send('conversation.item.added', { item: rendered, previous_item_id: previousItemId });
    this.#send('conversation.item.done', { item: rendered, previous_item_id: previousItemId });
  }

  #newResponse(fields: Pick<ResponseRecord, 'metadata' | 'speak' | 'format' | 'voice' | 'maxOutputTokens'>): ResponseRecord {
    return { id: newId('resp'), answerId: null, output: [], message: null, ...fields };
  }

  /** `response.created`: the response is in progress from now until its `response.done`. */
  #announce(record: ResponseRecord): void {
    this.#response = record;
    this.#send('response.created', { response: this.#responseJson(record, 'in_progress', null, null) });
  }

  #onAnswerStart(event: Extract<CoreEvent, { type: 'answer_start' }>): void {
    let record = this.#requested.get(event.answerId);
    this.#requested.delete(event.answerId);
    if (!record) {
      // An answer the server started itself (turn detection with create_response).
      record = this.#newResponse({ metadata: null, speak: event.speak, format: this.#config.outputFormat, voice: this.#config.voice, maxOutputTokens: this.#config.maxOutputTokens });
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
    this.#send('response.output_item.added', { response_id: record.id, output_index: outputIndex, item });
    this.#send('conversation.item.added', { item, previous_item_id: event.previousItemId });
    this.#send('response.content_part.added', { ...where, part: record.speak ? { type: 'audio', transcript: '' } : { type: 'text', text: '' } });
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
    this.#send('response.output_item.added', { response_id: record.id, output_index: outputIndex, item: { ...item, status: 'in_progress', arguments: '' } });
    this.#send('conversation.item.added', { item: { ...item, status: 'in_progress', arguments: '' }, previous_item_id: event.previousItemId });
    this.#send('response.function_call_arguments.delta', { ...where, delta: args });
    this.#send('response.function_call_arguments.done', { ...where, name, arguments: args });
    this.#send('response.output_item.done', { response_id: record.id, output_index: outputIndex, item });
    this.#send('conversation.item.done', { item });
  }

  #onCoreAudio(pcm: Int16Array): void {
    const record = this.#response;
    if (!record?.message || !record.speak) return;
    for (const delta of this.#output.encode(pcm, record.format)) this.#sendAudioDelta(record, record.message, delta);
  }

  #sendAudioDelta(record: ResponseRecord, message: NonNullable<ResponseRecord['message']>, delta: Buffer): void {
    this.#send('response.output_audio.delta', { response_id: record.id, item_id: message.id, output_index: message.outputIndex, content_index: 0, delta: delta.toString('base64') });
  }

  #onAnswerDone(event: Extract<CoreEvent, { type: 'answer_done' }>): void {
    const record = this.#response;
    if (!record || record.answerId !== event.answerId) return;
    // The message closes if it appeared; an answer that only called a function closed its call already.
    if (record.message) this.#closeMessage(record, record.message, event.item, event.status === 'completed');
    this.#armIdleTimeout();
    if (event.status === 'completed') this.#finishResponse(record, 'completed', null, event.metrics);
    else if (event.status === 'failed') this.#finishResponse(record, 'failed', { type: 'failed', error: { type: 'server_error', code: 'answer_failed', message: event.error } }, event.metrics);
    else this.#finishResponse(record, 'cancelled', { type: 'cancelled', reason: event.status === 'interrupted' ? 'turn_detected' : 'client_cancelled' }, event.metrics);
  }

  #closeMessage(record: ResponseRecord, message: NonNullable<ResponseRecord['message']>, done: ConversationItem, completed: boolean): void {
    const text = done.text ?? '';
    const where = { response_id: record.id, item_id: message.id, output_index: message.outputIndex, content_index: 0 };
    if (record.speak) {
      // The converter's tail is sent after a finished answer; after a cut one it is dropped, so the
      // cut answer's last words do not open the next one.
      const tail = this.#output.finish(record.format);
      if (completed) for (const delta of tail) this.#sendAudioDelta(record, message, delta);
      this.#send('response.output_audio.done', where);
      this.#send('response.output_audio_transcript.done', { ...where, transcript: text });
      this.#send('response.content_part.done', { ...where, part: { type: 'audio', transcript: text } });
    } else {
      this.#send('response.output_text.done', { ...where, text });
      this.#send('response.content_part.done', { ...where, part: { type: 'text', text } });
    }
    const item = renderItem(done);
    record.output[message.outputIndex] = item;
    this.#send('response.output_item.done', { response_id: record.id, output_index: message.outputIndex, item });
    this.#send('conversation.item.done', { item });
  }

  #finishResponse(record: ResponseRecord, status: string, details: Json | null, metrics: TurnMetrics | null): void {
    if (this.#response === record) this.#response = null;
    if (record.answerId === null) for (const [id, r] of this.#requested) if (r === record) this.#requested.delete(id);
    this.#send('response.done', { response: this.#responseJson(record, status, details, metrics) });
  }

  #onEnded(summary: SessionSummary): void {
    this.#log.info('realtime session ended', { session_id: this.#core.id, reason: summary.reason });
    if (this.#ws.readyState === this.#ws.OPEN) this.#ws.close(1000, summary.reason);
  }

  // ---- shapes --------------------------------------------------------------------------------

  #sessionJson(): Json {
    const c = this.#config;
    return {
      type: 'realtime',
      object: 'realtime.session',
      id: this.#sessionId,
      model: this.#options.model,
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

  #responseJson(record: ResponseRecord, status: string, details: Json | null, metrics: TurnMetrics | null): Json {
    const input = metrics?.llm_tokens_in ?? 0;
    const output = metrics?.llm_tokens_out ?? 0;
    return {
      id: record.id,
      object: 'realtime.response',
      status,
      status_details: details,
      output: record.output,
      conversation_id: 'conv_' + this.#sessionId.slice(5),
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

  #send(type: string, fields: Json): void {
    if (this.#ws.readyState !== this.#ws.OPEN) return;
    this.#ws.send(JSON.stringify({ type, event_id: `event_${this.#sessionId.slice(5, 13)}_${++this.#eventCount}`, ...fields }));
  }

  #error(type: string, code: string, message: string, param: string | null, clientEventId: string | null): void {
    const { error } = realtimeErrorEvent(type, code, message, param, clientEventId);
    this.#send('error', { error });
  }
}
