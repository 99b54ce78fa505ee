/**
 * The four engines behind their interfaces, loaded once per process, concurrently, before the
 * first job. Each load time is logged; a failure names the engine and stops the start.
 */
import type { Asr } from '../asr/asr.js';
import { SherpaWhisperAsr, type WhisperAsrConfig } from '../asr/sherpa-whisper-asr.js';
import { errorMessage, type Logger } from '../log/logger.js';
import { LlamaCppLlm, type LlamaCppConfig } from '../llm/llama-cpp-llm.js';
import type { Llm } from '../llm/llm.js';
import { TtsSidecar, type SidecarConfig } from '../tts/sidecar.js';
import { TtsServerClient, type TtsClientOptions } from '../tts/tts-client.js';
import type { Tts } from '../tts/tts.js';
import { loadSileroVad, type Vad, type VadConfig } from '../vad/vad.js';
import type { Scheduler } from './scheduler.js';

export interface Engines {
  vad: Vad;
  asr: Asr;
  llm: Llm;
  tts: Tts;
  /** Set when the engines are shared through the scheduler (scheduled-engines.ts): its back-off rule and load. */
  scheduler?: Scheduler;
  dispose(): Promise<void>;
}

export interface EnginesConfig {
  vad: VadConfig;
  asr: WhisperAsrConfig;
  llm: LlamaCppConfig;
  /** Our TTS server: which engine, its model folder and how many streams it batches (for logs and checks). */
  tts: { engine: 'vibevoice' | 'espeak-double'; modelDir: string; maxStreams: number; sidecar: SidecarConfig; client: Partial<TtsClientOptions> };
}

export async function loadEngines(config: EnginesConfig, log: Logger): Promise<Engines> {
  const started = performance.now();
  const timed = async <T>(name: string, load: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      const engine = await load();
      log.info('engine loaded', { engine: name, load_ms: Math.round(performance.now() - t0) });
      return engine;
    } catch (error) {
      throw Object.assign(new Error(`${name} failed to load: ${errorMessage(error)}`, { cause: error }), { engine: name });
    }
  };
  // The TTS server first: it is a process of its own and the slowest to be ready (it loads torch and
  // the model's weights), so it should not wait behind the others' synchronous set-up.
  const results = await Promise.allSettled([
    timed('tts', async () => new TtsServerClient(await TtsSidecar.start(config.tts.sidecar, log), config.tts.client, log)),
    timed('vad', () => loadSileroVad(config.vad, log)),
    timed('asr', () => SherpaWhisperAsr.load(config.asr, log)),
    timed('llm', () => LlamaCppLlm.load(config.llm, log)),
  ]);
  const [tts, vad, asr, llm] = results;
  if (vad.status === 'rejected' || asr.status === 'rejected' || llm.status === 'rejected' || tts.status === 'rejected') {
    // Free what did load (the TTS server is a child process) before failing.
    await Promise.allSettled([
      vad.status === 'fulfilled' ? vad.value.dispose() : null,
      llm.status === 'fulfilled' ? llm.value.dispose() : null,
      tts.status === 'fulfilled' ? tts.value.dispose() : null,
    ]);
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => errorMessage(r.reason));
    throw new Error(failures.join('; '));
  }
  log.info('all engines loaded', { total_ms: Math.round(performance.now() - started) });
  return {
    vad: vad.value,
    asr: asr.value,
    llm: llm.value,
    tts: tts.value,
    async dispose() {
      await Promise.allSettled([vad.value.dispose(), llm.value.dispose(), tts.value.dispose()]);
      asr.value.dispose();
    },
  };
}
