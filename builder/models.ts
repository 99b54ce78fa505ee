/**
 * `npm run models`: fills the models folder (default: the network volume when mounted, else ./models).
 *
 *   npm run models                       downloads the production models from the Hugging Face Hub
 *   npm run models -- --check            verifies what is there (sizes, checksums), lists what is missing, exits 1 if anything is
 *   npm run models -- --profile test     writes the tiny generated test models (no network)
 *
 * Options: --models-dir DIR, --asr-precision int8|fp32|both (default both: fp32 is the GPU's, int8 the
 * CPU's), --llm-quant Q4_K_M|Q8_0, --revision REV (a branch, tag or commit; each repo is fetched at one commit).
 * Environment: HF_TOKEN (gated repos), HF_ENDPOINT (a hub mirror), HF_HOME (tokenizer cache for VibeVoice),
 * S2S_TURN_MODEL=off (the worker runs without the end-of-turn model: it is neither fetched nor required).
 * Interrupted downloads resume from their `.part` file; every file is verified before it is placed.
 */
import { MultiBar, Presets } from 'cli-progress';
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { fetchFile, fetchIntoHfCache, hfCacheProblems, listRemoteFiles, manifestKey, readManifest, resolveCommit, verify, writeManifest, type HubOptions } from './hub-download.js';
import { productionSources, resolveRepoReference, type BuildChoice } from './model-sources.js';
import { writeTinyQwen } from './tiny-models/tiny-qwen.js';
import { writeTinySmartTurn } from './tiny-models/tiny-smart-turn.js';
import { writeTinyWhisper } from './tiny-models/tiny-whisper.js';
import { NETWORK_VOLUME, defaultModelsDir, fetchCommand, hfHome, modelFiles, requiredFiles, type Profile } from '../src/models/registry.js';

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

  const hfCacheDir = join(hfHome(modelsDir, process.env['HF_HOME']), 'hub');
  if (args.check) return check(profile, modelsDir, choice, hfCacheDir, args.revision);

  if (profile === 'test') {
    await writeTinyWhisper(dirname(files.asr.encoder));
    await writeTinyQwen(files.llm.gguf);
    if (choice.turnModel) await writeTinySmartTurn(files.turn.model);
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
    for (const source of productionSources(modelsDir, choice, args.revision)) {
      if (source.kind === 'hf-cache') {
        const repo = await resolveRepoReference(source.repoFrom);
        await fetchIntoHfCache(repo, source.revision, source.paths, hfCacheDir, hub);
        console.log(`cached ${repo}@${source.revision} (${source.paths.length} files) in ${hfCacheDir}`);
        continue;
      }
      const wanted = source.kind === 'files' ? source.files : null;
      // One commit for all of a repo's files, even if the branch moves during the run.
      const commit = await resolveCommit(source.repo, source.revision, hub);
      const remote = await listRemoteFiles(source.repo, commit, hub, wanted?.map((f) => f.path));
      for (const file of remote) {
        if (source.kind === 'snapshot' && source.skip.test(file.path)) continue;
        const pinned = wanted?.find((f) => f.path === file.path)?.sha256;
        if (pinned && file.sha256 !== pinned) throw new Error(`${source.repo}@${commit}/${file.path}: the hub lists sha256 ${file.sha256}, pinned ${pinned}`);
        const dest = source.kind === 'files' ? wanted!.find((f) => f.path === file.path)!.dest : join(source.destDir, file.path);
        const mb = (n: number) => Math.round(n / 1e5) / 10;
        const bar = bars.create(mb(file.size), 0, { file: `${source.repo}/${file.path}` });
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
  return check(profile, modelsDir, choice, hfCacheDir, args.revision);
}

/**
 * Lists missing files, re-verifies every file the manifest records (size and checksum), and looks
 * up the tokenizer in the HF cache the way huggingface_hub does offline.
 */
async function check(profile: Profile, modelsDir: string, choice: BuildChoice, hfCacheDir: string, revision: string): Promise<number> {
  const problems: string[] = [];
  const required = choice.asrPrecisions.flatMap((asrPrecision) => requiredFiles(modelFiles(profile, modelsDir, { asrPrecision, llmQuant: choice.llmQuant }), { turnModel: choice.turnModel }));
  for (const path of new Set(required.map((f) => f.path))) {
    const file = required.find((f) => f.path === path)!;
    const size = await stat(file.path).then((s) => s.size, () => 0);
    if (size === 0) problems.push(`missing  ${file.stage}: ${file.what}: ${file.path}`);
  }
  if (profile === 'production') {
    for (const source of productionSources(modelsDir, choice, revision)) {
      if (source.kind !== 'hf-cache') continue;
      const repo = await resolveRepoReference(source.repoFrom).catch((error: Error) => (problems.push(`corrupt  ${error.message}`), null));
      if (repo) problems.push(...(await hfCacheProblems(hfCacheDir, repo, source.revision, source.paths)));
    }
  }
  const manifest = await readManifest(modelsDir);
  if (profile === 'production') {
    // Files pinned by checksum: what the manifest recorded must be that version.
    for (const source of productionSources(modelsDir, choice, revision)) {
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
