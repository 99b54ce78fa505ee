/**
 * Where each production model comes from on the Hugging Face Hub, and where it goes in the models
 * folder (the paths match src/models/registry.ts, which the worker reads).
 */
import { modelFiles, type ModelChoice } from '../src/models/registry.js';

/** A list of files from one repo, each to a given path. */
export interface FileSource {
  kind: 'files';
  repo: string;
  revision: string;
  files: { path: string; dest: string }[];
}

/** Every file of a repo, into one folder. */
export interface SnapshotSource {
  kind: 'snapshot';
  repo: string;
  revision: string;
  destDir: string;
  /** Files not needed at run time (docs, images). */
  skip: RegExp;
}

/** Files loaded by hub name with the hub offline: they go into the HF cache layout under HF_HOME. */
export interface CacheSource {
  kind: 'hf-cache';
  repo: string;
  revision: string;
  paths: string[];
}

export type ModelSource = FileSource | SnapshotSource | CacheSource;

export const ASR_REPO = 'csukuangfj/sherpa-onnx-whisper-small.en';
export const LLM_REPO = 'Qwen/Qwen2.5-1.5B-Instruct-GGUF';
export const TTS_REPO = 'microsoft/VibeVoice-Realtime-0.5B';
/** VibeVoice's processor loads this tokenizer by name. */
export const TTS_TOKENIZER_REPO = 'Qwen/Qwen2.5-0.5B';

export function productionSources(modelsDir: string, choice: ModelChoice, revision = 'main'): ModelSource[] {
  const files = modelFiles('production', modelsDir, choice);
  const base = (path: string) => path.split('/').pop()!;
  return [
    {
      kind: 'files',
      repo: ASR_REPO,
      revision,
      files: [files.asr.encoder, files.asr.decoder, files.asr.tokens].map((dest) => ({ path: base(dest), dest })),
    },
    { kind: 'files', repo: LLM_REPO, revision, files: [{ path: base(files.llm.gguf), dest: files.llm.gguf }] },
    { kind: 'snapshot', repo: TTS_REPO, revision, destDir: files.tts.modelDir!, skip: /(^|\/)(README\.md|\.gitattributes|.*\.(png|jpg|gif|mp4|wav))$/i },
    { kind: 'hf-cache', repo: TTS_TOKENIZER_REPO, revision, paths: ['tokenizer.json', 'tokenizer_config.json', 'vocab.json', 'merges.txt', 'config.json'] },
  ];
}
