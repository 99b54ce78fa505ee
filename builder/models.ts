/**
 * `npm run models`: fills the models folder (default: the network volume when mounted, else ./models).
 *
 *   npm run models                       downloads the production models from the Hugging Face Hub
 *   npm run models -- --check            verifies what is there (sizes, checksums), lists what is missing, exits 1 if anything is
 *   npm run models -- --profile test     writes the tiny generated test models (no network)
 *
 * Options: --models-dir DIR, --asr-precision int8|fp32|both (default both: fp32 is the GPU's, int8 the
 * CPU's), --llm-quant Q4_K_M|Q8_0, --revision REV (a branch, tag or commit; each repo is fetched at one commit).
 * Environment: HF_TOKEN (gated repos), HF_ENDPOINT (a hub mirror), S2S_VOICE_PRESETS_URL (a mirror of upstream's
 * demo/voices/streaming_model at the pinned commit), S2S_VOICE_PRESETS_PINS (a JSON file of `{name, gitSha1}`
 * replacing the pinned list, for a mirror of another commit and the tests' fake), S2S_TTS_PYTHON (the Python with
 * s2s_tts; default tts-server/.venv, else python3), S2S_TURN_MODEL=off (the worker runs without the end-of-turn
 * model: it is neither fetched nor required).
 * Interrupted downloads resume from their `.part` file; every file is verified before it is placed.
 * The TTS model folder gets the tokenizer in `tokenizer/` and the voice presets, converted once by
 * `python -m s2s_tts.voices convert`, in `voices/`; the test profile's is made by `python -m s2s_tts.tiny_model`.
 */
import { MultiBar, Presets } from 'cli-progress';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { fetchFile, listRemoteFiles, manifestKey, readManifest, resolveCommit, verify, writeManifest, type HubOptions } from './hub-download.js';
import { productionSources, resolveRepoReference, type BuildChoice, type ModelSource } from './model-sources.js';
import { convertVoices, makeTinyTtsModel, missingVoices } from './tts-python.js';
import { writeTinyQwen } from './tiny-models/tiny-qwen.js';
import { writeTinySmartTurn } from './tiny-models/tiny-smart-turn.js';
import { writeTinyWhisper } from './tiny-models/tiny-whisper.js';
import { fetchUrlFile } from './url-download.js';
import { DEFAULT_VOICE_PRESETS_URL, VOICE_PRESETS, type VoicePreset } from './voice-presets.js';
import { NETWORK_VOLUME, defaultModelsDir, fetchCommand, modelFiles, requiredFiles, ttsPython, type Profile } from '../src/models/registry.js';

const pinsSchema = z.array(z.object({ name: z.string().regex(/^[\w.-]+$/), gitSha1: z.string().regex(/^[0-9a-f]{40}$/) })).min(1);

const argsSchema = z.object({
  profile: z.enum(['production', 'test']),
  'models-dir': z.string().optional(),
  check: z.boolean(),
  'asr-precision': z.enum(['int8', 'fp32', 'both']),
  'llm-quant': z.enum(['Q4_K_M', 'Q8_0']),
  revision: z.string().min(1),
});

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      profile: { type: 'string', default: 'production' },
      'models-dir': { type: 'string' },
      check: { type: 'boolean', default: false },
      'asr-precision': { type: 'string', default: 'both' },
      'llm-quant': { type: 'string', default: 'Q4_K_M' },
      revision: { type: 'string', default: 'main' },
    },
  });
  const parsed = argsSchema.safeParse(values);
  if (!parsed.success) {
    console.error(`npm run models: ${parsed.error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`).join('; ')}`);
    return 2;
  }
  const args = parsed.data;
  const profile: Profile = args.profile;
  const modelsDir = resolve(args['models-dir'] ?? process.env['S2S_MODELS_DIR'] ?? defaultModelsDir(existsSync(NETWORK_VOLUME)));
  const precision = args['asr-precision'];
  const choice: BuildChoice = {
    asrPrecisions: precision === 'both' ? ['int8', 'fp32'] : [precision],
    llmQuant: args['llm-quant'],
    turnModel: process.env['S2S_TURN_MODEL'] !== 'off',
  };
  const files = modelFiles(profile, modelsDir);
  const python = ttsPython(process.cwd(), process.env['S2S_TTS_PYTHON'], existsSync);
  let voices: { baseUrl: string; presets: readonly VoicePreset[] };
  try {
    voices = await voiceSources();
  } catch (error) {
    console.error(`npm run models: ${(error as Error).message}`);
    return 2;
  }
  const sources = productionSources(modelsDir, choice, args.revision, voices);

  if (args.check) return check(profile, modelsDir, choice, sources);

  if (profile === 'test') {
    try {
      await writeTinyWhisper(dirname(files.asr.encoder));
      await writeTinyQwen(files.llm.gguf);
      await makeTinyTtsModel(python, files.tts.modelDir);
      if (choice.turnModel) await writeTinySmartTurn(files.turn.model);
    } catch (error) {
      console.error(`npm run models: ${(error as Error).message}`);
      return 1;
    }
    console.log(`wrote the tiny test models to ${dirname(files.llm.gguf)}`);
    return 0;
  }

  const hub: HubOptions = {
    hubUrl: process.env['HF_ENDPOINT'],
    accessToken: process.env['HF_TOKEN'] ?? process.env['HUGGING_FACE_HUB_TOKEN'],
  };
  const bars = new MultiBar(
    { format: '{bar} {percentage}% | {value}/{total} MB | {file}', hideCursor: true, noTTYOutput: true, notTTYSchedule: 10_000, clearOnComplete: false },
    Presets.shades_classic,
  );
  const manifest = await readManifest(modelsDir);
  const started = Date.now();
  let downloaded = 0;
  try {
    const mb = (n: number) => Math.round(n / 1e5) / 10;
    for (const source of sources) {
      if (source.kind === 'url-files') {
        for (const file of source.files) {
          const bar = bars.create(0, 0, { file: `${source.repo}/${file.path}` });
          const outcome = await fetchUrlFile({ ...file, repo: source.repo, revision: source.revision }, file.dest, manifest, manifestKey(modelsDir, file.dest), {
            onProgress: (_path, done, total) => {
              if (total > 0) bar.setTotal(mb(total));
              bar.update(mb(done));
            },
          });
          if (outcome === 'downloaded') downloaded++;
          await writeManifest(modelsDir, manifest);
        }
        const missing = await missingVoices(source.files.map((f) => f.dest), files.tts.voicesDir);
        if (missing.length > 0) {
          bars.stop();
          await convertVoices(python, missing, files.tts.voicesDir, join(files.tts.modelDir, 'config.json'));
          console.log(`converted ${missing.length} voice preset(s) into ${files.tts.voicesDir}`);
        }
        continue;
      }
      const repo = source.kind === 'referenced-files' ? await resolveRepoReference(source.repoFrom) : source.repo;
      const wanted = source.kind === 'snapshot' ? null : source.files;
      // One commit for all of a repo's files, even if the branch moves during the run.
      const commit = await resolveCommit(repo, source.revision, hub);
      const remote = await listRemoteFiles(repo, commit, hub, wanted?.map((f) => f.path));
      for (const file of remote) {
        if (source.kind === 'snapshot' && source.skip.test(file.path)) continue;
        const pinned = source.kind === 'files' ? source.files.find((f) => f.path === file.path)?.sha256 : undefined;
        if (pinned && file.sha256 !== pinned) throw new Error(`${repo}@${commit}/${file.path}: the hub lists sha256 ${file.sha256}, pinned ${pinned}`);
        const dest = source.kind === 'snapshot' ? join(source.destDir, file.path) : wanted!.find((f) => f.path === file.path)!.dest;
        const bar = bars.create(mb(file.size), 0, { file: `${repo}/${file.path}` });
        const outcome = await fetchFile(file, dest, manifest, manifestKey(modelsDir, dest), {
          ...hub,
          onProgress: (_path, done) => bar.update(mb(done)),
        });
        bar.update(mb(file.size));
        if (outcome === 'downloaded') downloaded++;
        // Record progress after every file, so an interrupted run keeps what it finished.
        await writeManifest(modelsDir, manifest);
      }
    }
  } catch (error) {
    bars.stop();
    console.error(`\nnpm run models: ${(error as Error).message}`);
    return 1;
  }
  bars.stop();
  console.log(`\n${downloaded} file(s) downloaded in ${Math.round((Date.now() - started) / 1000)} s; models in ${modelsDir}`);
  return check(profile, modelsDir, choice, sources);
}

/** The voice presets' base URL and pins: the pinned ones, or a mirror's (S2S_VOICE_PRESETS_URL, S2S_VOICE_PRESETS_PINS). */
async function voiceSources(): Promise<{ baseUrl: string; presets: readonly VoicePreset[] }> {
  const baseUrl = process.env['S2S_VOICE_PRESETS_URL'] || DEFAULT_VOICE_PRESETS_URL;
  const pinsFile = process.env['S2S_VOICE_PRESETS_PINS'];
  if (!pinsFile) return { baseUrl, presets: VOICE_PRESETS };
  const parsed = pinsSchema.safeParse(JSON.parse(await readFile(pinsFile, 'utf8')));
  if (!parsed.success) throw new Error(`S2S_VOICE_PRESETS_PINS (${pinsFile}) must be a JSON list of {name, gitSha1}: ${parsed.error.issues[0]?.message}`);
  return { baseUrl, presets: parsed.data };
}

/**
 * Lists missing files (the model folder's, its tokenizer and converted voices, and each fetched voice preset),
 * and re-verifies every file the manifest records (size and checksum).
 */
async function check(profile: Profile, modelsDir: string, choice: BuildChoice, sources: ModelSource[]): Promise<number> {
  const problems: string[] = [];
  const required = choice.asrPrecisions.flatMap((asrPrecision) => requiredFiles(modelFiles(profile, modelsDir, { asrPrecision, llmQuant: choice.llmQuant }), { turnModel: choice.turnModel }));
  if (profile === 'production') {
    const voicesDir = modelFiles(profile, modelsDir).tts.voicesDir;
    for (const source of sources) {
      if (source.kind !== 'url-files') continue;
      for (const file of source.files) {
        const name = file.dest.split('/').pop()!.replace(/\.pt$/, '');
        required.push({ stage: 'tts', path: file.dest, what: `voice preset ${name}` });
        required.push({ stage: 'tts', path: join(voicesDir, `${name}.safetensors`), what: `converted voice ${name}` });
      }
    }
  }
  for (const path of new Set(required.map((f) => f.path))) {
    const file = required.find((f) => f.path === path)!;
    const size = await stat(file.path).then((s) => s.size, () => 0);
    if (size === 0) problems.push(`missing  ${file.stage}: ${file.what}: ${file.path}`);
  }
  const manifest = await readManifest(modelsDir);
  if (profile === 'production') {
    // Files pinned by checksum: what the manifest recorded must be that version.
    for (const source of sources) {
      if (source.kind !== 'files') continue;
      for (const file of source.files) {
        const entry = manifest.files[manifestKey(modelsDir, file.dest)];
        if (file.sha256 && entry && entry.sha256 !== file.sha256) problems.push(`corrupt  ${manifestKey(modelsDir, file.dest)}: sha256 ${entry.sha256}, pinned ${file.sha256}`);
      }
    }
  }
  for (const [key, entry] of Object.entries(manifest.files)) {
    const path = join(modelsDir, key);
    const size = await stat(path).then((s) => s.size, () => null);
    if (size === null) problems.push(`missing  ${key} (listed in the manifest)`);
    else if (size !== entry.size) problems.push(`corrupt  ${key}: ${size} bytes, expected ${entry.size}`);
    else {
      const mismatch = await verify(path, { size: entry.size, sha256: entry.sha256, gitSha1: entry.git_sha1 });
      if (mismatch) problems.push(`corrupt  ${key}: ${mismatch}`);
    }
  }
  if (problems.length > 0) {
    console.error(`${problems.length} problem(s) in ${modelsDir} (profile ${profile}):\n  ${problems.join('\n  ')}\nfetch the models with: ${fetchCommand(profile)}`);
    return 1;
  }
  console.log(`models of profile ${profile} are complete in ${modelsDir} (${Object.keys(manifest.files).length} files verified against the manifest)`);
  return 0;
}

process.exit(await main());
