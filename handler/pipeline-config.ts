/**
 * The speech pipeline's configuration, read from the environment once at start and validated
 * with zod. `S2S_PROFILE=test` swaps model files and the TTS engine (tiny generated models, the
 * espeak-ng double behind our own TTS server), never code paths.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../src/errors.js';
import { DEFAULT_AUDIO_LIMITS, type AudioLimits } from '../src/audio/decode-input.js';
import type { FetchLimits } from '../src/audio/fetch-audio.js';
import { SPOKEN_SYSTEM_PROMPT } from '../src/llm/llm.js';
import { NETWORK_VOLUME, defaultModelsDir, fetchCommand, hfHome, modelFiles, ttsPython, type AsrPrecision, type Profile } from '../src/models/registry.js';
import type { EnginesConfig } from '../src/pipeline/engines.js';
import type { PreemptionMode } from '../src/pipeline/preemptive.js';
import type { SchedulerOptions } from '../src/pipeline/scheduler.js';
import type { SessionLimits } from '../src/session/core-types.js';
import { DEFAULT_VAD_CONFIG } from '../src/vad/vad.js';
import { formatIssues } from './config.js';
import { probeMachine, type Machine } from './machine.js';

const int = (fallback: number, min: number, max: number) => z.coerce.number().int().min(min).max(max).default(fallback);
const num = (fallback: number, min: number, max: number) => z.coerce.number().min(min).max(max).default(fallback);
const boolText = z.enum(['1', '0', 'true', 'false', 'yes', 'no']).transform((v) => ['1', 'true', 'yes'].includes(v));
const bool = (fallback: boolean) => boolText.default(fallback);

export const envSchema = z.object({
  S2S_PROFILE: z.enum(['production', 'test']).default('production'),
  /** One short decode, prompt and utterance per engine at start, before the first job (default: on in production). */
  S2S_WARMUP: boolText.optional(),
  /** Where the builder put the models; default the network volume when mounted, else ./models. */
  S2S_MODELS_DIR: z.string().min(1).optional(),
  /** cuda: GPU required (fail fast without one); auto: GPU when the machine has one; cpu: never. */
  S2S_DEVICE: z.enum(['cuda', 'auto', 'cpu']).optional(),
  /** Default: fp32 when Whisper runs on CUDA, int8 on CPU (see resolveDevices). */
  S2S_ASR_PRECISION: z.enum(['int8', 'fp32']).optional(),
  S2S_LLM_QUANT: z.enum(['Q4_K_M', 'Q8_0']).default('Q4_K_M'),
  S2S_LLM_CONTEXT: int(4096, 256, 32_768),
  /**
   * Conversations one worker carries at once: live sessions and turn jobs alike. The queue worker
   * takes jobs only below it, a load-balancing endpoint refuses the next session (HTTP 429), and the
   * LLM has one context sequence per conversation. Default sized for an L4 (docs/deployment.md).
   */
  S2S_MAX_CONVERSATIONS: int(8, 1, 64),
  /** Replaced by S2S_MAX_CONVERSATIONS: refused with a clear message. */
  S2S_LLM_CONVERSATIONS: z.string().optional(),
  S2S_LLM_THREADS: int(0, 0, 64),
  S2S_MAX_RESPONSE_TOKENS: int(200, 1, 2048),
  S2S_TEMPERATURE: num(0.7, 0, 2),
  S2S_SYSTEM_PROMPT: z.string().min(1).default(SPOKEN_SYSTEM_PROMPT),
  S2S_ASR_THREADS: int(2, 1, 32),
  /** Endpoint silence with no cue from the transcript; adaptive endpointing moves it between MIN and MAX. */
  S2S_ENDPOINT_MS: int(400, 32, 5_000),
  S2S_ADAPTIVE_ENDPOINT: bool(true),
  S2S_ENDPOINT_MIN_MS: int(200, 32, 5_000),
  S2S_ENDPOINT_MAX_MS: int(900, 32, 5_000),
  S2S_VAD_ACTIVATION: num(0.5, 0, 1),
  S2S_VAD_RELEASE: num(0.35, 0, 1),
  S2S_MIN_SPEECH_MS: int(150, 0, 5_000),
  S2S_PRE_ROLL_MS: int(200, 0, 2_000),
  S2S_MAX_UTTERANCE_MS: int(30_000, 1_000, 120_000),
  /**
   * The learned end-of-turn model (Smart Turn v3.2) beside the transcript cue. on: required (a
   * missing or corrupt file stops start-up); optional: a warning and the cue alone; off: the cue alone.
   */
  S2S_TURN_MODEL: z.enum(['on', 'optional', 'off']).default('on'),
  /** Another Smart Turn v3 ONNX file (same input and output); its checksum is not checked. */
  S2S_TURN_MODEL_PATH: z.string().min(1).optional(),
  S2S_TURN_THRESHOLD: num(0.5, 0, 1),
  S2S_TURN_INCOMPLETE_MS: int(1_500, 32, 10_000),
  S2S_TURN_RECHECK_MS: int(100, 0, 5_000),
  S2S_TURN_THREADS: int(1, 1, 16),
  /** Preemptive response: full (LLM and TTS start on the speculative transcript), llm (LLM only), off. */
  S2S_PREEMPTION: z.enum(['full', 'llm', 'off']).default('full'),
  /** The TTS server's engine: the model, or the espeak-ng double (default in the test profile). */
  S2S_TTS_ENGINE: z.enum(['vibevoice', 'espeak-double']).optional(),
  /** The TTS model folder (config.json, model.safetensors, tokenizer/, voices/); default from the models folder. */
  S2S_TTS_MODEL_DIR: z.string().min(1).optional(),
  /**
   * Streams the TTS server speaks at once (batched): the scheduler's TTS slots and the server's --max-streams;
   * beyond it streams wait on the worker's TTS lane, confirmed before speculative.
   */
  S2S_TTS_MAX_STREAMS: z.coerce.number().int().min(1).max(256).optional(),
  /** The Python that runs the TTS server; default the checkout's tts-server/.venv when there is one, else python3. */
  S2S_TTS_PYTHON: z.string().min(1).optional(),
  /** The TTS server command as a JSON array of strings, instead of `python -m s2s_tts ...`. */
  S2S_TTS_COMMAND: z.string().optional(),
  S2S_TTS_PORT: int(8000, 1, 65_535),
  S2S_TTS_STARTUP_TIMEOUT_MS: int(300_000, 500, 1_800_000),
  S2S_VOICE: z.string().min(1).optional(),
  S2S_TTS_CFG: num(1.5, 0.1, 10),
  S2S_TTS_STEPS: int(5, 1, 50),
  S2S_MAX_AUDIO_MS: int(DEFAULT_AUDIO_LIMITS.maxInputMs, 1_000, 600_000),
  S2S_MAX_AUDIO_BYTES: int(DEFAULT_AUDIO_LIMITS.maxInputBytes, 1_000, 200 * 1024 * 1024),
  S2S_AUDIO_URL_TIMEOUT_MS: int(15_000, 100, 300_000),
  S2S_AUDIO_URL_ALLOW_PRIVATE: bool(false),
  /** Live sessions: the port session jobs listen on (exposed as a TCP port on RunPod). */
  S2S_SESSION_PORT: int(8005, 1, 65_535),
  S2S_SESSION_HOST: z.string().default('0.0.0.0'),
  /** Load-balancing endpoints: the token clients give on /ws (browsers cannot send headers). */
  S2S_SESSION_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  S2S_MIN_INTERRUPTION_MS: int(400, 50, 5_000),
  /** Live sessions: a partial transcript every this many ms of speech (0: off). */
  S2S_PARTIAL_TRANSCRIPT_MS: int(500, 0, 10_000),
  S2S_OUTPUT_LEAD_MS: int(250, 0, 10_000),
  S2S_SESSION_IDLE_MS: int(60_000, 1_000, 3_600_000),
  S2S_SESSION_MAX_MS: int(1_800_000, 10_000, 86_400_000),
  /**
   * A session job nobody joins holds the worker this long while other jobs wait. The client that
   * asked for the session is waiting for the job's first chunk and connects one round trip after it.
   */
  S2S_SESSION_CONNECT_TIMEOUT_MS: int(30_000, 1_000, 3_600_000),
  /** On SIGTERM, live sessions get this long to wrap up before they end. */
  S2S_SESSION_SHUTDOWN_GRACE_MS: int(5_000, 0, 600_000),
  /** Client audio waiting to be processed, at most: a client sending faster than real time is stopped. */
  S2S_SESSION_MAX_BACKLOG_MS: int(10_000, 1_000, 120_000),
  /** Answer audio sent but not yet taken by the client (the socket's buffer) before the pacer holds. */
  S2S_SESSION_MAX_UNREAD_BYTES: int(96_000, 4_096, 16 * 1024 * 1024),
  /** A client that takes no audio for this long while an answer waits is stuck: its session ends. */
  S2S_SESSION_STUCK_MS: int(30_000, 1_000, 600_000),
  /** Items a session's conversation may hold (messages, turns, calls, outputs); past it new input is refused. */
  S2S_SESSION_MAX_ITEMS: int(1_000, 10, 100_000),
  /** Characters of text a session's conversation may hold in all; past it new input is refused. */
  S2S_SESSION_MAX_TEXT_CHARS: int(400_000, 1_000, 20_000_000),
  /** Set by RunPod for exposed TCP ports: where clients reach this worker. */
  RUNPOD_PUBLIC_IP: z.string().optional(),
  RUNPOD_TCP_PORT_8005: z.coerce.number().int().min(1).max(65_535).optional(),
  /** Seed variables of the RunPod template; only these models are supported. */
  ASR_MODEL: z.literal('small.en').default('small.en'),
  LLM_MODEL: z.literal('Qwen/Qwen2.5-1.5B-Instruct').default('Qwen/Qwen2.5-1.5B-Instruct'),
  MODEL_PATH: z.string().default('microsoft/VibeVoice-Realtime-0.5B'),
  HF_HOME: z.string().optional(),
});

export interface JobDefaults {
  systemPrompt: string;
  voice: string | undefined;
  maxResponseTokens: number;
  temperature: number;
  cfg: number;
  steps: number;
  preemption: PreemptionMode;
}

/** The session server's settings, and the limits every session gets (their meanings are in SessionLimits). */
export interface SessionConfig extends SessionLimits {
  port: number;
  host: string;
  /** The URL clients are told to connect to (ws://public-ip:public-port/ws on RunPod). */
  publicUrl: string;
  standingToken: string | null;
  partialTranscriptMs: number;
  connectTimeoutMs: number;
}

/** Where each engine runs, decided once at start (S2S_DEVICE=auto resolved from the machine). */
export interface DevicePlan {
  requested: 'cuda' | 'auto' | 'cpu';
  /** The LLM and the TTS server. */
  device: 'cuda' | 'cpu';
  asr: 'cuda' | 'cpu';
  asrPrecision: AsrPrecision;
  /** Why, for the start-up log. */
  reason: string;
}

/** How many conversations the worker carries, and how its shared engines are scheduled (src/pipeline/scheduler.ts). */
export interface CapacityConfig {
  maxConversations: number;
  scheduler: SchedulerOptions;
}

export interface PipelineConfig {
  profile: Profile;
  capacity: CapacityConfig;
  devices: DevicePlan;
  /** Said once in the start-up log: settings that work but are not what the user likely wants. */
  warnings: string[];
  warmUp: boolean;
  sessions: SessionConfig;
  modelsDir: string;
  engines: EnginesConfig;
  jobs: JobDefaults;
  audio: AudioLimits;
  audioUrl: FetchLimits;
}

/**
 * Decides where every engine runs, once: `auto` becomes `cuda` when the machine has an NVIDIA GPU,
 * else `cpu`, for the LLM, the TTS server and Whisper alike (Whisper stays on CPU when sherpa-onnx
 * has no CUDA libraries). The Whisper precision defaults to the device's: the int8 exports are
 * dynamically quantized, and onnxruntime's CUDA provider has no kernels for those MatMuls, so int8
 * on CUDA runs them on the CPU with copies each way (onnxruntime issues 9115, 7745, 12229).
 */
export function resolveDevices(requested: DevicePlan['requested'], precision: AsrPrecision | undefined, machine: Machine): { plan: DevicePlan; warnings: string[] } {
  let device: 'cuda' | 'cpu';
  let asr: 'cuda' | 'cpu';
  let reason: string;
  if (requested === 'auto') {
    device = machine.nvidiaGpu ? 'cuda' : 'cpu';
    asr = device === 'cuda' && machine.sherpaCuda ? 'cuda' : 'cpu';
    reason = machine.nvidiaGpu
      ? `S2S_DEVICE=auto: an NVIDIA GPU is present${asr === 'cpu' ? '; sherpa-onnx has no CUDA libraries, so Whisper runs on CPU' : ''}`
      : 'S2S_DEVICE=auto: no NVIDIA GPU on this machine, every engine runs on CPU';
  } else {
    // `cuda` is a requirement: each engine fails fast at load when it cannot have the GPU.
    device = requested;
    asr = requested;
    reason = `S2S_DEVICE=${requested}`;
  }
  const asrPrecision = precision ?? (asr === 'cuda' ? 'fp32' : 'int8');
  const warnings: string[] = [];
  if (asr === 'cuda' && asrPrecision === 'int8') {
    warnings.push("S2S_ASR_PRECISION=int8 with Whisper on CUDA: onnxruntime's CUDA provider has no kernels for the int8 model's quantized MatMuls, so they run on the CPU (slower than fp32 on the GPU); use fp32");
  }
  return { plan: { requested, device, asr, asrPrecision, reason }, warnings };
}

export function readPipelineConfig(env: NodeJS.ProcessEnv, machine: Machine = probeMachine()): PipelineConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) throw new ConfigError(`invalid environment: ${formatIssues(parsed.error.issues)}`);
  const e = parsed.data;
  if (e.S2S_LLM_CONVERSATIONS !== undefined) {
    throw new ConfigError('S2S_LLM_CONVERSATIONS was replaced by S2S_MAX_CONVERSATIONS: conversations one worker carries at once (one LLM sequence each)');
  }
  const profile = e.S2S_PROFILE;
  const modelsDir = resolve(e.S2S_MODELS_DIR ?? defaultModelsDir(existsSync(NETWORK_VOLUME)));
  const { plan: devices, warnings } = resolveDevices(e.S2S_DEVICE ?? (profile === 'test' ? 'cpu' : 'cuda'), e.S2S_ASR_PRECISION, machine);
  const device = devices.device;
  const files = modelFiles(profile, modelsDir, { asrPrecision: devices.asrPrecision, llmQuant: e.S2S_LLM_QUANT });
  if (e.S2S_VAD_RELEASE > e.S2S_VAD_ACTIVATION) {
    throw new ConfigError(`S2S_VAD_RELEASE (${e.S2S_VAD_RELEASE}) must not exceed S2S_VAD_ACTIVATION (${e.S2S_VAD_ACTIVATION})`);
  }
  if (e.S2S_ENDPOINT_MIN_MS > e.S2S_ENDPOINT_MAX_MS) {
    throw new ConfigError(`S2S_ENDPOINT_MIN_MS (${e.S2S_ENDPOINT_MIN_MS}) must not exceed S2S_ENDPOINT_MAX_MS (${e.S2S_ENDPOINT_MAX_MS})`);
  }
  const tts = ttsServer(e, profile, device, files.tts.modelDir);
  const fetchHint = `fetch them with: ${fetchCommand(profile)}`;
  const publicHost = e.RUNPOD_PUBLIC_IP ?? '127.0.0.1';
  const publicPort = e.RUNPOD_PUBLIC_IP && e.RUNPOD_TCP_PORT_8005 ? e.RUNPOD_TCP_PORT_8005 : e.S2S_SESSION_PORT;
  return Object.freeze({
    profile,
    capacity: { maxConversations: e.S2S_MAX_CONVERSATIONS, scheduler: schedulerOptions(e.S2S_MAX_CONVERSATIONS, tts.maxStreams, devices.asr) },
    devices,
    warnings,
    // The tiny test models have no first-call costs worth a slower start.
    warmUp: e.S2S_WARMUP ?? profile === 'production',
    sessions: {
      port: e.S2S_SESSION_PORT,
      host: e.S2S_SESSION_HOST,
      publicUrl: `ws://${publicHost}:${publicPort}/ws`,
      standingToken: e.S2S_SESSION_TOKEN ?? null,
      minInterruptionMs: e.S2S_MIN_INTERRUPTION_MS,
      partialTranscriptMs: e.S2S_PARTIAL_TRANSCRIPT_MS,
      outputLeadMs: e.S2S_OUTPUT_LEAD_MS,
      idleTimeoutMs: e.S2S_SESSION_IDLE_MS,
      maxDurationMs: e.S2S_SESSION_MAX_MS,
      connectTimeoutMs: e.S2S_SESSION_CONNECT_TIMEOUT_MS,
      shutdownGraceMs: e.S2S_SESSION_SHUTDOWN_GRACE_MS,
      maxBacklogMs: e.S2S_SESSION_MAX_BACKLOG_MS,
      maxUnreadBytes: e.S2S_SESSION_MAX_UNREAD_BYTES,
      stuckMs: e.S2S_SESSION_STUCK_MS,
      maxItems: e.S2S_SESSION_MAX_ITEMS,
      maxTextChars: e.S2S_SESSION_MAX_TEXT_CHARS,
    },
    modelsDir,
    engines: {
      vad: {
        ...DEFAULT_VAD_CONFIG,
        defaults: {
          activationThreshold: e.S2S_VAD_ACTIVATION,
          releaseThreshold: e.S2S_VAD_RELEASE,
          minSpeechMs: e.S2S_MIN_SPEECH_MS,
          endpointMs: e.S2S_ENDPOINT_MS,
          adaptive: e.S2S_ADAPTIVE_ENDPOINT,
          minEndpointMs: e.S2S_ENDPOINT_MIN_MS,
          maxEndpointMs: e.S2S_ENDPOINT_MAX_MS,
          preRollMs: e.S2S_PRE_ROLL_MS,
          maxUtteranceMs: e.S2S_MAX_UTTERANCE_MS,
          turnThreshold: e.S2S_TURN_THRESHOLD,
          turnIncompleteMs: e.S2S_TURN_INCOMPLETE_MS,
          turnRecheckMs: e.S2S_TURN_RECHECK_MS,
        },
        turnModel:
          e.S2S_TURN_MODEL === 'off'
            ? null
            : {
                mode: e.S2S_TURN_MODEL === 'on' ? ('required' as const) : ('optional' as const),
                path: e.S2S_TURN_MODEL_PATH ?? files.turn.model,
                sha256: e.S2S_TURN_MODEL_PATH ? null : files.turn.sha256,
                threads: e.S2S_TURN_THREADS,
              },
      },
      asr: { ...files.asr, provider: devices.asr, numThreads: profile === 'test' ? 1 : e.S2S_ASR_THREADS, fetchHint },
      llm: {
        modelPath: files.llm.gguf,
        gpu: device === 'cpu' ? (false as const) : ('cuda' as const),
        contextSize: e.S2S_LLM_CONTEXT,
        maxConversations: e.S2S_MAX_CONVERSATIONS,
        threads: e.S2S_LLM_THREADS || (profile === 'test' ? 1 : 0),
        defaultMaxTokens: e.S2S_MAX_RESPONSE_TOKENS,
        defaultTemperature: e.S2S_TEMPERATURE,
      },
      tts: {
        engine: tts.engine,
        modelDir: tts.modelDir,
        maxStreams: tts.maxStreams,
        sidecar: {
          command: tts.command,
          env: {
            ...tts.env,
            // The model folder holds the tokenizer: nothing may come from the network.
            HF_HUB_OFFLINE: '1',
            TRANSFORMERS_OFFLINE: '1',
            HF_HOME: hfHome(modelsDir, e.HF_HOME),
          },
          host: '127.0.0.1',
          port: e.S2S_TTS_PORT,
          startupTimeoutMs: e.S2S_TTS_STARTUP_TIMEOUT_MS,
          restartDelayMs: 500,
          maxRestartDelayMs: 30_000,
        },
        client: { cfg: e.S2S_TTS_CFG, steps: e.S2S_TTS_STEPS, ...(e.S2S_VOICE ? { defaultVoice: e.S2S_VOICE } : {}) },
      },
    },
    jobs: {
      systemPrompt: e.S2S_SYSTEM_PROMPT,
      voice: e.S2S_VOICE,
      maxResponseTokens: e.S2S_MAX_RESPONSE_TOKENS,
      temperature: e.S2S_TEMPERATURE,
      cfg: e.S2S_TTS_CFG,
      steps: e.S2S_TTS_STEPS,
      preemption: e.S2S_PREEMPTION,
    },
    audio: { maxInputMs: e.S2S_MAX_AUDIO_MS, maxInputBytes: e.S2S_MAX_AUDIO_BYTES },
    audioUrl: { maxBytes: e.S2S_MAX_AUDIO_BYTES, timeoutMs: e.S2S_AUDIO_URL_TIMEOUT_MS, allowPrivateAddresses: e.S2S_AUDIO_URL_ALLOW_PRIVATE },
  });
}

/**
 * The engines' lanes. ASR on CUDA: two decodes at once (sherpa-onnx decodes one Whisper stream per
 * call, with no batch decode; a second decode overlaps one's CPU-side work with the other's model
 * time); on the CPU one, since decodes there only take cores from each other, the LLM and the VAD.
 * LLM: every conversation's answer at once (node-llama-cpp evaluates the sequences of its one
 * context together, in one batch). TTS: the server's streams. Preemptive answers back off to idle
 * capacity (Scheduler.mayPreempt).
 */
export function schedulerOptions(maxConversations: number, ttsStreams: number, asrDevice: 'cuda' | 'cpu' = 'cuda'): SchedulerOptions {
  return { asrSlots: asrDevice === 'cuda' ? 2 : 1, llmSlots: maxConversations, ttsSlots: ttsStreams, preemptionBackoff: true };
}

/**
 * Our TTS server (`python -m s2s_tts`, docs/tts-protocol.md) on loopback: the model on the worker's
 * device (CUDA in bfloat16, CPU in float32), or the espeak-ng double (the test profile's default).
 * Python: S2S_TTS_PYTHON, else the checkout's `tts-server/.venv` (tts-server/setup-venv.sh) when
 * there is one, else the image's `python3` (the image installs s2s_tts into it).
 */
function ttsServer(e: z.infer<typeof envSchema>, profile: Profile, device: 'cuda' | 'cpu', defaultModelDir: string) {
  const engine = e.S2S_TTS_ENGINE ?? (profile === 'test' ? 'espeak-double' : 'vibevoice');
  const modelDir = resolve(e.S2S_TTS_MODEL_DIR ?? defaultModelDir);
  // An L4 batches 16 streams at little more than the cost of one (TTS-ENGINE.md); the test profile's CPU, 4.
  const maxStreams = e.S2S_TTS_MAX_STREAMS ?? (profile === 'test' ? 4 : 16);
  const dtype = device === 'cuda' ? 'bfloat16' : 'float32';
  if (e.S2S_TTS_COMMAND) {
    const list = z.array(z.string().min(1)).min(1).safeParse(safeJson(e.S2S_TTS_COMMAND));
    if (!list.success) throw new ConfigError('S2S_TTS_COMMAND must be a JSON array of strings, e.g. ["python3","-m","s2s_tts",...]');
    return { engine, modelDir, maxStreams, command: list.data, env: {} };
  }
  const python = ttsPython(process.cwd(), e.S2S_TTS_PYTHON, existsSync);
  const args = ['-m', 's2s_tts', '--engine', engine, '--model-dir', modelDir, '--host', '127.0.0.1', '--port', String(e.S2S_TTS_PORT)];
  args.push('--device', device, '--dtype', dtype, '--max-streams', String(maxStreams));
  // A checkout's package is found in its source folder whichever Python runs it (the image installs it).
  const source = resolve('tts-server', 'src');
  return { engine, modelDir, maxStreams, command: [python, ...args], env: existsSync(source) ? { PYTHONPATH: source } : ({} as Record<string, string>) };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
