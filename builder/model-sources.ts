/**
 * Where each production model comes from on the Hugging Face Hub, and where it goes in the models
 * folder (the paths match src/models/registry.ts, which the worker reads).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SMART_TURN_V3_2, TTS_TOKENIZER_FILES, modelFiles, type AsrPrecision, type LlmQuant } from '../src/models/registry.js';
import { DEFAULT_VOICE_PRESETS_URL, VIBEVOICE_COMMIT, VOICE_PRESETS, VOICE_PRESETS_DIR, type VoicePreset } from './voice-presets.js';

/** A list of files from one repo, each to a given path. */
export interface FileSource {
  kind: 'files';
  repo: string;
  revision: string;
  /** `sha256`: the content pinned here; the hub's listing must say the same or nothing is fetched. */
  files: { path: string; dest: string; sha256?: string }[];
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

/** Files of a repo named in a JSON file an earlier source downloaded (as upstream's loading code reads it). */
export interface ReferencedSource {
  kind: 'referenced-files';
  repoFrom: RepoReference;
  revision: string;
  files: { path: string; dest: string }[];
}

/** Files from plain URLs (GitHub's raw files), each checked against a pinned git blob sha1. */
export interface UrlSource {
  kind: 'url-files';
  repo: string;
  revision: string;
  files: { url: string; path: string; gitSha1: string; dest: string }[];
}

export interface RepoReference {
  file: string;
  field: string;
  /** Used when the file or the field is absent, as the loading code does. */
  fallback: string;
}

export type ModelSource = FileSource | SnapshotSource | ReferencedSource | UrlSource;

export const ASR_REPO = 'csukuangfj/sherpa-onnx-whisper-small.en';
export const LLM_REPO = 'Qwen/Qwen2.5-1.5B-Instruct-GGUF';
export const TTS_REPO = 'microsoft/VibeVoice-Realtime-0.5B';
/**
 * The tokenizer is the one upstream's processor (vibevoice_streaming_processor.py) loads by the hub name in the
 * model's preprocessor_config.json, `language_model_pretrained_name`, else this one. Its files go into
 * `<tts model dir>/tokenizer/`, where our engine reads them.
 */
export const TTS_TOKENIZER_FIELD = 'language_model_pretrained_name';
export const TTS_TOKENIZER_FALLBACK = 'Qwen/Qwen2.5-1.5B';
export const TTS_TOKENIZER_PATHS: readonly string[] = TTS_TOKENIZER_FILES;
export const VOICES_REPO = 'microsoft/VibeVoice';

/** Where the fetched presets (`.pt`, pickled) wait for conversion: beside the model folder, never read at run time. */
export function voicePresetsDir(modelsDir: string): string {
  return join(modelsDir, 'tts', 'voice-presets');
}

/**
 * What the builder fetches. Whisper in each precision asked for: by default both, since the worker
 * picks fp32 when Whisper runs on CUDA and int8 on CPU (S2S_DEVICE=auto decides at start).
 */
export interface BuildChoice {
  asrPrecisions: AsrPrecision[];
  llmQuant: LlmQuant;
  /** The end-of-turn model too (not when the worker runs with S2S_TURN_MODEL=off). */
  turnModel: boolean;
}

export function productionSources(
  modelsDir: string,
  choice: BuildChoice,
  revision = 'main',
  voices: { baseUrl: string; presets: readonly VoicePreset[] } = { baseUrl: DEFAULT_VOICE_PRESETS_URL, presets: VOICE_PRESETS },
): ModelSource[] {
  const perPrecision = choice.asrPrecisions.map((asrPrecision) => modelFiles('production', modelsDir, { asrPrecision, llmQuant: choice.llmQuant }));
  const files = perPrecision[0]!;
  const base = (path: string) => path.split('/').pop()!;
  const asrFiles = [...new Set(perPrecision.flatMap((f) => [f.asr.encoder, f.asr.decoder, f.asr.tokens]))];
  return [
    { kind: 'files', repo: ASR_REPO, revision, files: asrFiles.map((dest) => ({ path: base(dest), dest })) },
    { kind: 'files', repo: LLM_REPO, revision, files: [{ path: base(files.llm.gguf), dest: files.llm.gguf }] },
    // Pinned to its commit and checksum whatever --revision says: the endpointer is tuned on this file.
    ...(choice.turnModel
      ? [{ kind: 'files' as const, repo: SMART_TURN_V3_2.repo, revision: SMART_TURN_V3_2.revision, files: [{ path: SMART_TURN_V3_2.file, dest: files.turn.model, sha256: SMART_TURN_V3_2.sha256 }] }]
      : []),
    { kind: 'snapshot', repo: TTS_REPO, revision, destDir: files.tts.modelDir, skip: /(^|\/)(README\.md|\.gitattributes|.*\.(png|jpg|gif|mp4|wav))$/i },
    {
      kind: 'referenced-files',
      repoFrom: { file: join(files.tts.modelDir, 'preprocessor_config.json'), field: TTS_TOKENIZER_FIELD, fallback: TTS_TOKENIZER_FALLBACK },
      revision,
      files: TTS_TOKENIZER_PATHS.map((path) => ({ path, dest: join(files.tts.tokenizerDir, path) })),
    },
    {
      kind: 'url-files',
      repo: VOICES_REPO,
      revision: VIBEVOICE_COMMIT,
      files: voices.presets.map((preset) => ({
        url: `${voices.baseUrl.replace(/\/$/, '')}/${preset.name}.pt`,
        path: `${VOICE_PRESETS_DIR}/${preset.name}.pt`,
        gitSha1: preset.gitSha1,
        dest: join(voicePresetsDir(modelsDir), `${preset.name}.pt`),
      })),
    },
  ];
}

/** The repo a reference names: the field's value, or the fallback when the file or the field is absent or empty. */
export async function resolveRepoReference(ref: RepoReference): Promise<string> {
  const text = await readFile(ref.file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return null;
    throw error;
  });
  if (text === null) return ref.fallback;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`${ref.file} is not valid JSON: ${(error as Error).message}`);
  }
  const value = (parsed as Record<string, unknown> | null)?.[ref.field];
  if (value === undefined || value === null || value === '') return ref.fallback;
  if (typeof value !== 'string' || !/^[\w.-]+\/[\w.-]+$/.test(value)) throw new Error(`${ref.file}: ${ref.field} must be a hub repo name (org/name), got ${JSON.stringify(value)}`);
  return value;
}
