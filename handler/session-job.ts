/**
 * A session job: opens a live WebSocket session on the worker's exposed port and stays
 * IN_PROGRESS while the client is connected. Its first stream chunk (and a progress update) is
 * `{"type":"session","url","token",...}`; it ends with `done` when the client leaves, the session
 * idles out, or job-stop arrives (client cancel, TTL, execution timeout).
 */
import { randomBytes } from 'node:crypto';
import type { WebSocket } from 'ws';
import { InvalidInputError, S2sError } from '../src/errors.js';
import type { Logger } from '../src/log/logger.js';
import type { Engines } from '../src/pipeline/engines.js';
import { LiveSession, type LiveSessionOptions, type SessionSummary } from '../src/session/live-session.js';
import { SESSION_INPUT_SAMPLE_RATE, SESSION_OUTPUT_SAMPLE_RATE } from '../src/session/protocol.js';
import { billedFigures } from '../src/session/session-core.js';
import type { SessionServer } from '../src/session/session-server.js';
import { endpointerOverrides, type SessionJobInput } from './job-input.js';
import type { DoneEvent } from '../src/pipeline/events.js';
import type { PipelineConfig } from './pipeline-config.js';

export type SessionJobEvent =
  | { type: 'session'; url: string; token: string; expires_in_s: number; sample_rate_in: number; sample_rate_out: number; format: 'pcm16' }
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
    chunker: config.jobs.chunker,
    vad: endpointerOverrides(input.vad),
    minInterruptionMs: config.sessions.minInterruptionMs,
    outputLeadMs: config.sessions.outputLeadMs,
    idleTimeoutMs: input.idle_timeout_ms ?? config.sessions.idleTimeoutMs,
    maxDurationMs: config.sessions.maxDurationMs,
    shutdownGraceMs: config.sessions.shutdownGraceMs,
  };
}

/** Runs one live session on an accepted socket. */
export async function runLiveSession(
  ws: WebSocket,
  engines: Engines,
  config: PipelineConfig,
  input: Partial<SessionJobInput>,
  log: Logger,
  signal: AbortSignal,
  shutdown?: AbortSignal,
): Promise<SessionSummary> {
  const options = sessionOptions(config, input, engines.tts.voices);
  const conversation = await engines.llm.openConversation({ systemPrompt: input.system_prompt ?? config.jobs.systemPrompt, history: input.history });
  return new LiveSession(ws, engines, conversation, options, log, signal, shutdown).run();
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
  let accept!: (ws: WebSocket) => void;
  const connected = new Promise<WebSocket>((resolve) => (accept = resolve));
  const withdraw = sessions.register(token, (ws) => accept(ws), config.sessions.connectTimeoutMs);
  const invitation: SessionJobEvent = {
    type: 'session',
    url: publicUrl,
    token,
    expires_in_s: Math.round(config.sessions.connectTimeoutMs / 1000),
    sample_rate_in: SESSION_INPUT_SAMPLE_RATE,
    sample_rate_out: SESSION_OUTPUT_SAMPLE_RATE,
    format: 'pcm16',
  };
  yield invitation;
  await job.progress(invitation).catch(() => undefined);

  let timer: NodeJS.Timeout | undefined;
  const waited = await Promise.race([
    connected,
    new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), config.sessions.connectTimeoutMs))),
    new Promise<'stopped'>((resolve) => signal.addEventListener('abort', () => resolve('stopped'), { once: true })),
    // A worker shutting down invites nobody new.
    new Promise<'stopped'>((resolve) => job.shutdown?.addEventListener('abort', () => resolve('stopped'), { once: true })),
  ]);
  clearTimeout(timer);
  withdraw();
  if (waited === 'stopped') return;
  if (waited === 'timeout') throw new S2sError('SESSION_NOT_JOINED', `no client connected within ${config.sessions.connectTimeoutMs} ms`);
  const summary = await runLiveSession(waited, engines, config, input, job.log, signal, job.shutdown);
  yield {
    type: 'done',
    reason: summary.reason,
    ...billedFigures(summary),
    execution_ms: Math.round(performance.now() - started),
  };
}
