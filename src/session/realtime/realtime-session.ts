/**
 * The OpenAI Realtime API (GA dialect, REALTIME.md) over the session core: JSON events both ways,
 * audio as base64 in `input_audio_buffer.append` and `response.output_audio.delta`. This adapter
 * decodes, encodes and keeps the protocol's bookkeeping: here the inbound side (client events, the
 * session config as realtime-config.ts merges it, input audio and speech events, event ids); the
 * outbound response lifecycle is `RealtimeResponses` (realtime-responses.ts). Turns, barge-in,
 * pacing, answers, items and limits live in `SessionCore`, shared with `/ws`.
 *
 * Errors go out in the documented shape only for real errors (a client without an error listener
 * dies of one): cancelling with nothing active, truncating past the end and retrieving an unknown
 * item are answered quietly.
 */
import type { WebSocket } from 'ws';
import { errorMessage, type Logger } from '../../log/logger.js';
import type { Conversation } from '../../llm/llm.js';
import type { Engines } from '../../pipeline/engines.js';
import { newId } from '../ids.js';
import { SessionCore, type ConversationItem, type CoreEvent, type SessionCoreOptions, type SessionSummary } from '../session-core.js';
import { InputAudio, OutputAudio } from './audio-codec.js';
import { InvalidInputError } from '../../errors.js';
import { ToolSet } from '../../llm/tools.js';
import {
  CLIENT_EVENT_TYPES,
  clientEventSchema,
  describeIssues,
  functionCallOutputItemSchema,
  messageItemSchema,
  type ClientEvent,
  type SessionConfigUpdate,
} from './client-events.js';
import { baseEndpointerOf, initialConfig, mergeUpdate, sessionJson, type BaseEndpointer, type RealtimeConfig } from './realtime-config.js';
import { coreTurnDetection, realtimeErrorEvent, renderItem, type Json } from './realtime-mappings.js';
import { InboundQueue } from './inbound-queue.js';
import { RealtimeResponses } from './realtime-responses.js';
import { resolveVoice } from './voices.js';

/** Larger text frames are refused with an error event (the socket itself allows up to REALTIME_MAX_PAYLOAD_BYTES). */
export const MAX_CLIENT_EVENT_BYTES = 1024 * 1024;
/** Frames above this close the socket (1009), as `ws` must: they are never read into memory whole. */
export const REALTIME_MAX_PAYLOAD_BYTES = 8 * 1024 * 1024;
/** Audio sent ahead of playback in G.711 sessions (at most; S2S_OUTPUT_LEAD_MS when that is less): a caller talking over an answer hears this, plus the VAD's onset. */
export const G711_OUTPUT_LEAD_MS = 80;
/** Client events waiting behind a session.update whose tools are compiling, at most (bytes); more ends the session. */
const MAX_QUEUED_EVENT_BYTES = 16 * 1024 * 1024;

export interface RealtimeSessionOptions extends SessionCoreOptions {
  /** The system prompt the session was opened with, shown as `instructions` until a client sets its own. */
  instructions: string;
  /** The model name the client asked for (shown back; the worker's models answer). */
  model: string;
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
  readonly #defaultVoice: string;
  readonly #sessionId = newId('sess');
  #config: RealtimeConfig;
  #eventCount = 0;
  /** The outbound side: responses from `response.created` to `response.done`. */
  readonly #responses: RealtimeResponses;
  #held: HeldSpeech | null = null;
  /** server_vad's idle_timeout_ms: runs from the end of an answer's audio until the user speaks. */
  #idleTimer: NodeJS.Timeout | null = null;
  /** The endpointer's settings before any client change: what turn detection defaults and scales from. */
  readonly #baseEndpointer: BaseEndpointer;
  /** Client events, handled in order: a session.update whose tools compile holds those after it. */
  readonly #inbound = new InboundQueue((data, isBinary) => this.#onMessageGuarded(data, isBinary), MAX_QUEUED_EVENT_BYTES);

  private constructor(ws: WebSocket, core: SessionCore, options: RealtimeSessionOptions, log: Logger, input: InputAudio, output: OutputAudio, defaultVoice: string) {
    this.#ws = ws;
    this.#core = core;
    this.#options = options;
    this.#log = log;
    this.#input = input;
    this.#defaultVoice = defaultVoice;
    this.#responses = new RealtimeResponses({
      core,
      output,
      defaultVoice,
      conversationId: 'conv_' + this.#sessionId.slice(5),
      config: () => this.#config,
      send: (type, fields) => this.#send(type, fields),
      error: (type, code, message, param, clientEventId) => this.#error(type, code, message, param, clientEventId),
      answerDone: () => this.#armIdleTimeout(),
    });
    this.#baseEndpointer = baseEndpointerOf(core.endpointerOptions);
    this.#config = initialConfig(options.instructions, options.voice, this.#baseEndpointer);
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
        audio: (pcm) => session!.#responses.onAudio(pcm),
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
    this.#ws.on('message', (data, isBinary) => this.#receive(data as Buffer, isBinary));
    this.#ws.on('close', () => this.#core.end('client_left'));
    const ended = this.#core.run().finally(() => this.#disarmIdleTimeout());
    // The client may have left while the session was being set up.
    if (this.#ws.readyState !== this.#ws.OPEN) this.#core.end('client_left');
    this.#send('session.created', { session: this.#sessionJson() });
    return ended;
  }

  // ---- client -> core ------------------------------------------------------------------------

  /** A client event: handled in order (see InboundQueue); a client that floods a slow update is ended. */
  #receive(data: Buffer, isBinary: boolean): void {
    if (this.#inbound.push(data, isBinary)) return;
    this.#error('invalid_request_error', 'too_many_events', `more than ${MAX_QUEUED_EVENT_BYTES} bytes of events arrived while a session.update was being applied; the session ends`, null, null);
    this.#core.end('error');
  }

  /** No exception from one client's event may leave the handler: at most it ends that session. */
  #onMessageGuarded(data: Buffer, isBinary: boolean): Promise<void> | void {
    const failed = (error: unknown) => {
      this.#log.error('realtime event handling failed', { session_id: this.#core.id, error: errorMessage(error) });
      this.#error('server_error', 'internal_error', errorMessage(error), null, null);
      this.#core.end('error');
    };
    try {
      return this.#onMessage(data, isBinary)?.catch(failed);
    } catch (error) {
      failed(error);
    }
  }

  #onMessage(data: Buffer, isBinary: boolean): Promise<void> | void {
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
    return this.#handle(parsed.data, clientEventId);
  }

  #handle(event: ClientEvent, eventId: string | null): Promise<void> | void {
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
        return this.#responses.create(event, eventId);
      case 'response.cancel':
        return this.#responses.cancel();
    }
  }

  /**
   * Tools are checked once, here, when they change: a bad schema is the client's error, not a
   * failed answer later. They compile on the schema thread (the events after this one wait); an
   * update of anything else keeps the compiled set and applies at once.
   */
  #updateSession(update: SessionConfigUpdate, eventId: string | null): Promise<void> | void {
    if (update.tools === undefined) return this.#applyUpdate(update, this.#core.settings.tools, eventId);
    return ToolSet.compile(update.tools as { name: string; description?: string; parameters?: Json }[]).then(
      (tools) => this.#applyUpdate(update, tools, eventId),
      (error: unknown) => {
        if (!(error instanceof InvalidInputError)) throw error;
        this.#error('invalid_request_error', 'invalid_value', `session.update: ${error.message}`, 'session.tools', eventId);
      },
    );
  }

  #applyUpdate(update: SessionConfigUpdate, tools: ToolSet | undefined, eventId: string | null): void {
    if (this.#core.isEnded) return;
    const merged = mergeUpdate(this.#config, update, { base: this.#baseEndpointer, voices: this.#core.voices, defaultVoice: this.#defaultVoice, tools });
    if ('refused' in merged) return this.#error('invalid_request_error', 'invalid_value', merged.refused.message, merged.refused.param, eventId);
    const next = (this.#config = merged.config);
    // A telephony bridge (Twilio's) cannot drop what it holds until its marks say so: send less ahead.
    const g711 = next.outputFormat.type !== 'audio/pcm';
    this.#core.setOutputLeadMs(g711 ? Math.min(G711_OUTPUT_LEAD_MS, this.#options.outputLeadMs) : this.#options.outputLeadMs);
    this.#core.configure({
      voice: resolveVoice(next.voice, this.#core.voices, this.#defaultVoice)!,
      maxTokens: next.maxOutputTokens === 'inf' ? this.#options.maxTokens : next.maxOutputTokens,
      instructions: next.instructions === this.#options.instructions ? undefined : next.instructions,
      speak: next.outputModalities.includes('audio'),
      tools,
      toolChoice: merged.toolChoice,
    });
    // Only an update that carries turn detection touches it (an unrelated one leaves the speech in progress alone).
    if (update.audio?.input?.turn_detection !== undefined) this.#core.setTurnDetection(coreTurnDetection(next.turnDetection, this.#baseEndpointer));
    this.#send('session.updated', { session: this.#sessionJson() });
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
      else if ('refused' in added) this.#error('invalid_request_error', added.refused, `conversation.item.create: ${added.message}`, 'item', eventId);
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
    else if ('refused' in added) this.#error('invalid_request_error', added.refused, `conversation.item.create: ${added.message}`, 'item', eventId);
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
      case 'answer_message':
      case 'answer_text':
      case 'function_call':
      case 'answer_done':
        return this.#responses.onAnswerEvent(event);
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
      if (this.#responses.inProgress || this.#core.answering || this.#core.isEnded) return;
      this.#send('input_audio_buffer.timeout_triggered', { audio_start_ms: Math.round(armedAtMs), audio_end_ms: Math.round(this.#core.heardMs), item_id: null });
      this.#responses.create({ type: 'response.create' }, null);
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

  #onEnded(summary: SessionSummary): void {
    this.#log.info('realtime session ended', { session_id: this.#core.id, reason: summary.reason });
    if (this.#ws.readyState === this.#ws.OPEN) this.#ws.close(1000, summary.reason);
  }

  // ---- shapes --------------------------------------------------------------------------------

  #sessionJson(): Json {
    return sessionJson(this.#config, this.#sessionId, this.#options.model);
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
