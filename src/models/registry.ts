/**
 * Where every model file lives under the models folder, per profile. The builder fills the
 * folder (`npm run models`); engines only read it and never download. A missing file is named
 * together with the command that fetches it.
 */
import { join } from 'node:path';

/** Smart Turn v3.2 (the end-of-turn model, BSD-2-Clause): pipecat-ai/smart-turn-v3 on the Hugging Face Hub, the commit that added v3.2. */
export const SMART_TURN_V3_2 = {
  file: 'smart-turn-v3.2-cpu.onnx',
  bytes: 8_679_182,
  sha256: '2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f',
  repo: 'pipecat-ai/smart-turn-v3',
  revision: 'f766f81d3cfdf7737ac64aad813d91bbfd56bf93',
} as const;

export type Profile = 'production' | 'test';
export type AsrPrecision = 'int8' | 'fp32';
export type LlmQuant = 'Q4_K_M' | 'Q8_0';

export interface ModelChoice {
  asrPrecision: AsrPrecision;
  llmQuant: LlmQuant;
}

export const DEFAULT_MODEL_CHOICE: ModelChoice = { asrPrecision: 'int8', llmQuant: 'Q4_K_M' };

/** The network volume RunPod mounts on Serverless workers. */
export const NETWORK_VOLUME = '/runpod-volume';

export function defaultModelsDir(volumeExists: boolean): string {
  return volumeExists ? join(NETWORK_VOLUME, 's2s-models') : 'models';
}

export interface ModelFiles {
  asr: { encoder: string; decoder: string; tokens: string };
  llm: { gguf: string };
  /**
   * Our TTS engine's model folder (the server's --model-dir, S2S_TTS_MODEL_DIR): `config.json` and
   * `model.safetensors` as microsoft publishes them, `tokenizer/` (the Qwen2.5 tokenizer files) and `voices/`
   * (the converted presets). Production: VibeVoice-Realtime-0.5B; test: the tiny random-weight model
   * (`python -m s2s_tts.tiny_model`) in the same layout.
   */
  tts: { modelDir: string; tokenizerDir: string; voicesDir: string };
  /** The end-of-turn model (Smart Turn v3.2; the test profile's is a tiny generated stand-in). */
  turn: { model: string; sha256: string | null };
}

/** The Qwen2.5 tokenizer files the engine reads from `<tts model dir>/tokenizer/`. */
export const TTS_TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'vocab.json', 'merges.txt'] as const;
/** The voice the worker asks for when none is configured (upstream's demo default). */
export const DEFAULT_TTS_VOICE = 'en-Carter_man';

function ttsFiles(modelDir: string): ModelFiles['tts'] {
  return { modelDir, tokenizerDir: join(modelDir, 'tokenizer'), voicesDir: join(modelDir, 'voices') };
}

export interface RequiredFile {
  stage: 'asr' | 'llm' | 'tts' | 'turn';
  path: string;
  what: string;
}

export function modelFiles(profile: Profile, modelsDir: string, choice: ModelChoice = DEFAULT_MODEL_CHOICE): ModelFiles {
  if (profile === 'test') {
    const dir = join(modelsDir, 'test');
    return {
      asr: {
        encoder: join(dir, 'tiny-whisper', 'tiny-encoder.onnx'),
        decoder: join(dir, 'tiny-whisper', 'tiny-decoder.onnx'),
        tokens: join(dir, 'tiny-whisper', 'tiny-tokens.txt'),
      },
      llm: { gguf: join(dir, 'tiny-qwen.gguf') },
      tts: ttsFiles(join(dir, 'tiny-vibevoice')),
      turn: { model: join(dir, 'tiny-smart-turn.onnx'), sha256: null },
    };
  }
  const asrDir = join(modelsDir, 'asr', 'sherpa-onnx-whisper-small.en');
  const suffix = choice.asrPrecision === 'int8' ? '.int8' : '';
  return {
    asr: {
      encoder: join(asrDir, `small.en-encoder${suffix}.onnx`),
      decoder: join(asrDir, `small.en-decoder${suffix}.onnx`),
      tokens: join(asrDir, 'small.en-tokens.txt'),
    },
    llm: { gguf: join(modelsDir, 'llm', `qwen2.5-1.5b-instruct-${choice.llmQuant.toLowerCase()}.gguf`) },
    tts: ttsFiles(join(modelsDir, 'tts', 'VibeVoice-Realtime-0.5B')),
    turn: { model: join(modelsDir, 'turn', SMART_TURN_V3_2.file), sha256: SMART_TURN_V3_2.sha256 },
  };
}

/** `turnModel: false`: the worker runs without the end-of-turn model (S2S_TURN_MODEL=off). */
export function requiredFiles(files: ModelFiles, { turnModel = true }: { turnModel?: boolean } = {}): RequiredFile[] {
  const required: RequiredFile[] = [
    { stage: 'asr', path: files.asr.encoder, what: 'Whisper encoder' },
    { stage: 'asr', path: files.asr.decoder, what: 'Whisper decoder' },
    { stage: 'asr', path: files.asr.tokens, what: 'Whisper tokens' },
    { stage: 'llm', path: files.llm.gguf, what: 'Qwen2.5 GGUF' },
    ...(turnModel ? [{ stage: 'turn' as const, path: files.turn.model, what: 'Smart Turn model' }] : []),
  ];
  required.push(
    { stage: 'tts', path: join(files.tts.modelDir, 'config.json'), what: 'VibeVoice config' },
    { stage: 'tts', path: join(files.tts.modelDir, 'model.safetensors'), what: 'VibeVoice weights' },
    ...TTS_TOKENIZER_FILES.map((name) => ({ stage: 'tts' as const, path: join(files.tts.tokenizerDir, name), what: 'Qwen2.5 tokenizer' })),
  );
  return required;
}

/** The command that fills the models folder for a profile. */
export function fetchCommand(profile: Profile): string {
  return profile === 'test' ? 'npm run models -- --profile test' : 'npm run models';
}

/**
 * The Python that runs `s2s_tts` (the TTS server, and the builder's voice conversion and tiny model):
 * S2S_TTS_PYTHON, else the project's venv (`tts-server/.venv`, made by tts-server/setup-venv.sh) when it
 * exists under `root`, else `python3` from PATH (the image installs s2s_tts into its Python).
 */
export function ttsPython(root: string, fromEnv: string | undefined, exists: (path: string) => boolean): string {
  if (fromEnv) return fromEnv;
  const venv = join(root, 'tts-server', '.venv', 'bin', 'python');
  return exists(venv) ? venv : 'python3';
}

/** HF_HOME for the TTS server: the environment's, else a folder beside the models (where `npm run models` caches). */
export function hfHome(modelsDir: string, fromEnv: string | undefined): string {
  return fromEnv ?? join(modelsDir, 'hf-home');
}
