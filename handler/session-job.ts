/**
 * A session job: opens a live WebSocket session on the worker's exposed port and stays
 * IN_PROGRESS while the client is connected, in our protocol (`url`) or the OpenAI Realtime API
 * (`realtime_url`). Its first stream chunk (and a progress update) is
 * `{"type":"session","url","realtime_url","token",...}`; it ends with `done` when the client leaves, the session
 * idles out, or job-stop arrives (client cancel, TTL, execution timeout).
 */
import { randomBytes } from 'node:crypto';
import type { WebSocket } from 'ws';
import { InvalidInputError, S2sError } from '../src/errors.js';
import { errorMessage, type Logger } from '../src/log/logger.js';
import type { Engines } from '../src/pipeline/engines.js';
import { LiveSession, type LiveSessionOptions, type SessionSummary } from '../src/session/live-session.js';
import { SESSION_INPUT_SAMPLE_RATE, SESSION_OUTPUT_SAMPLE_RATE } from '../src/session/protocol.js';
import { billedFigures } from '../src/session/session-core.js';
import type { Connection, SessionServer } from '../src/session/session-server.js';
import { realtimeErrorEvent } from '../src/session/realtime/realtime-mappings.js';
import { RealtimeSession } from '../src/session/realtime/realtime-session.js';
import { checkedEndpointerOverrides, type SessionJobInput } from './job-input.js';
import type { DoneEvent } from '../src/pipeline/events.js';
import type { PipelineConfig } from './pipeline-config.js';
import { sleep, whenAborted } from './runtime/abort.js';

export type SessionJobEvent =
  /** `url` is our protocol's WebSocket; `realtime_url` the base URL of the OpenAI Realtime API on the same port (`<realtime_url>/realtime`). */
  | { type: 'session'; url: string; realtime_url: string; token: string; expires_in_s: number; sample_rate_in: number; sample_rate_out: number; format: 'pcm16' }
  /** The bill of a turn job's `done`, and why the session ended. */
  | (DoneEvent & { reason: SessionSummary['reason'] });

/** Session settings from the worker's config, with what a job or an LB client may override. */
export function sessionOptions(config: PipelineConfig, input: Partial<SessionJobInput>, voices: readonly string[]): LiveSessionOptions {
  const voice = input.voice ?? config.jobs.voice ?? voices[0] ?? 'en-Carter_man';
  if (!voices.includes(voice)) throw new InvalidInputError(`voice: unknown voice "${voice}"; valid voices: ${voices.join(', ')}`);
  return {
    voice,
    maxTokens: input.max_response_tokens ?? config.jobs.maxResponseTokens,
    temperature: input.temperature ?? config.jobs.temperature,
    cfg: config.jobs.cfg,
    steps: config.jobs.steps,
    vad: checkedEndpointerOverrides(input.vad, config.engines.vad.defaults),
    preemption: input.preemption ?? config.jobs.preemption,
    partialTranscriptMs: config.sessions.partialTranscriptMs,
    minInterruptionMs: config.sessions.minInterruptionMs,
    outputLeadMs: config.sessions.outputLeadMs,
    idleTimeoutMs: input.idle_timeout_ms ?? config.sessions.idleTimeoutMs,
    maxDurationMs: config.sessions.maxDurationMs,
    shutdownGraceMs: config.sessions.shutdownGraceMs,
    maxBacklogMs: config.sessions.maxBacklogMs,
    maxUnreadBytes: config.sessions.maxUnreadBytes,
    stuckMs: config.sessions.stuckMs,
    maxItems: config.sessions.maxItems,
    maxTextChars: config.sessions.maxTextChars,
  };
}

/**
 * Runs one live session on an accepted socket, in the wire protocol it connected with. A session
 * that cannot start (every LLM conversation slot in use, say) tells the client why, in its
 * protocol, and closes the socket before it rejects, and frees what it had opened.
 */
export async function runLiveSession(
  ws: WebSocket,
  connection: Connection,
  engines: Engines,
  config: PipelineConfig,
  input: Partial<SessionJobInput>,
  log: Logger,
  signal: AbortSignal,
  shutdown?: AbortSignal,
): Promise<SessionSummary> {
  let session: { run(): Promise<SessionSummary> };
  try {
    // A session opened now would never hear the warning (the signal has fired): refuse it.
    if (shutdown?.aborted) throw new S2sError('WORKER_SHUTTING_DOWN', 'this worker is shutting down: it opens no new sessions');
    const options = sessionOptions(config, input, engines.tts.voices);
    const systemPrompt = input.system_prompt ?? config.jobs.systemPrompt;
    const conversation = await engines.llm.openConversation({ systemPrompt, history: input.history });
    try {
      session =
        connection.protocol === 'native'
          ? new LiveSession(ws, engines, conversation, options, log, signal, shutdown)
          : // No partial transcripts: whole re-decodes cannot be sent as the append-only
            // input_audio_transcription.delta, so their ASR time would be spent for nothing.
            await RealtimeSession.open(ws, engines, conversation, { ...options, partialTranscriptMs: 0, instructions: systemPrompt, model: connection.url.searchParams.get('model') ?? 'gpt-realtime' }, log, signal, shutdown);
    } catch (error) {
      conversation.dispose();
      throw error;
    }
  } catch (error) {
    const message = errorMessage(error);
    const code = error instanceof S2sError ? error.code : 'SESSION_FAILED';
    log.error('live session failed to start', { error: message });
    if (ws.readyState === ws.OPEN) {
      ws.send(JSON.stringify(connection.protocol === 'native' ? { type: 'error', code, message } : realtimeErrorEvent('server_error', code.toLowerCase(), message)));
      ws.close(1011, 'session failed to start');
    }
    throw error;
  }
  return session.run();
}

/** The `.../v1` base a Realtime client passes as its baseURL, for a session URL ending in `/ws`. */
export function realtimeBaseUrl(sessionUrl: string): string {
  return sessionUrl.replace(/\/ws$/, '/v1');
}

export async function* runSessionJob(
  input: SessionJobInput,
  engines: Engines,
  config: PipelineConfig,
  sessions: SessionServer,
  publicUrl: string,
  job: { progress(update: unknown): Promise<void>; log: Logger; shutdown?: AbortSignal },
  signal: AbortSignal,
): AsyncGenerator<SessionJobEvent> {
  const started = performance.now();
  sessionOptions(config, input, engines.tts.voices); // refuse bad settings before a client is invited
  const token = randomBytes(24).toString('base64url');
  let accept!: (client: { ws: WebSocket; connection: Connection }) => void;
  const connected = new Promise<{ ws: WebSocket; connection: Connection }>((resolve) => (accept = resolve));
  const withdraw = sessions.register(token, (ws, connection) => accept({ ws, connection }), config.sessions.connectTimeoutMs);
  const invitation: SessionJobEvent = {
    type: 'session',
    url: publicUrl,
    realtime_url: realtimeBaseUrl(publicUrl),
    token,
    expires_in_s: Math.round(config.sessions.connectTimeoutMs / 1000),
    sample_rate_in: SESSION_INPUT_SAMPLE_RATE,
    sample_rate_out: SESSION_OUTPUT_SAMPLE_RATE,
    format: 'pcm16',
  };
  yield invitation;
  await job.progress(invitation).catch(() => undefined);

  // Ends the wait's timer and listeners: `job.shutdown` lives as long as the worker.
  const waitOver = new AbortController();
  const waited = await Promise.race([
    connected,
    sleep(config.sessions.connectTimeoutMs, waitOver.signal).then(() => 'timeout' as const),
    // Either may have fired during the awaits above: whenAborted checks.
    whenAborted(signal, waitOver.signal).then(() => 'stopped' as const),
    // A worker shutting down invites nobody new.
    ...(job.shutdown ? [whenAborted(job.shutdown, waitOver.signal).then(() => 'stopped' as const)] : []),
  ]);
  waitOver.abort();
  withdraw();
  if (waited === 'stopped') return;
  if (waited === 'timeout') throw new S2sError('SESSION_NOT_JOINED', `no client connected within ${config.sessions.connectTimeoutMs} ms`);
  const summary = await runLiveSession(waited.ws, waited.connection, engines, config, input, job.log, signal, job.shutdown);
  yield {
    type: 'done',
    reason: summary.reason,
    ...billedFigures(summary),
    execution_ms: Math.round(performance.now() - started),
  };
}
