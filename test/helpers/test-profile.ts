/**
 * The test profile, as `S2S_PROFILE=test` runs it: tiny generated models in a models folder and the
 * VibeVoice protocol double as the TTS server, on a free port. Same code paths as production.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { writeTinyQwen } from '../../builder/tiny-models/tiny-qwen.js';
import { writeTinySmartTurn } from '../../builder/tiny-models/tiny-smart-turn.js';
import { writeTinyWhisper } from '../../builder/tiny-models/tiny-whisper.js';
import { createS2sHandler, type S2sHandler } from '../../handler/s2s-handler.js';
import { Logger } from '../../src/log/logger.js';
import { modelFiles } from '../../src/models/registry.js';
import { freePort } from './tts-sidecar.js';

export async function testProfileEnv(extra: Record<string, string> = {}): Promise<Record<string, string>> {
  const modelsDir = await mkdtemp(join(tmpdir(), 's2s-models-'));
  const files = modelFiles('test', modelsDir);
  await writeTinyWhisper(dirname(files.asr.encoder));
  await writeTinyQwen(files.llm.gguf);
  await writeTinySmartTurn(files.turn.model);
  // Free ports for the TTS server and session jobs (a queue worker opens the session port at start).
  return { S2S_PROFILE: 'test', S2S_MODELS_DIR: modelsDir, S2S_TTS_PORT: String(await freePort()), S2S_SESSION_PORT: String(await freePort()), ...extra };
}

/**
 * A handler on the test profile. `listenForSessions`: bind the session port now, as the queue worker does
 * (for session jobs; a free port left unbound until the first session job can be taken meanwhile).
 */
export async function testProfileHandler(extra: Record<string, string> = {}, log?: Logger, options: { listenForSessions?: boolean } = {}): Promise<S2sHandler> {
  const quiet = log ?? new Logger({ level: 'ERROR', jsonLines: true, write: () => undefined });
  return createS2sHandler({ log: quiet, env: await testProfileEnv(extra), listenForSessions: options.listenForSessions ?? false });
}
