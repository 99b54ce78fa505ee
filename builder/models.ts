/**
 * `npm run models`: fills the models folder (default: the network volume when mounted, else ./models).
 *
 *   npm run models -- --profile test    writes the tiny generated test models (no network)
 *   npm run models -- --check           verifies what is there, lists what is missing, exits 1 if anything is
 *   npm run models                      downloads the production models (lands with the deployment work)
 */
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { writeTinyQwen } from './tiny-models/tiny-qwen.js';
import { writeTinyWhisper } from './tiny-models/tiny-whisper.js';
import { DEFAULT_MODEL_CHOICE, NETWORK_VOLUME, defaultModelsDir, fetchCommand, modelFiles, requiredFiles, type Profile } from '../src/models/registry.js';

const { values } = parseArgs({
  options: {
    profile: { type: 'string', default: 'production' },
    'models-dir': { type: 'string' },
    check: { type: 'boolean', default: false },
  },
});
const profile = values.profile as Profile;
if (profile !== 'production' && profile !== 'test') {
  console.error(`--profile must be "production" or "test", got "${values.profile}"`);
  process.exit(2);
}
const modelsDir = values['models-dir'] ?? defaultModelsDir(existsSync(NETWORK_VOLUME));
const files = modelFiles(profile, modelsDir, DEFAULT_MODEL_CHOICE);

async function missing(): Promise<string[]> {
  const absent: string[] = [];
  for (const file of requiredFiles(files)) {
    const size = await stat(file.path).then((s) => s.size, () => 0);
    if (size === 0) absent.push(`${file.stage}: ${file.what}: ${file.path}`);
  }
  return absent;
}

if (values.check) {
  const absent = await missing();
  if (absent.length) {
    console.error(`missing ${absent.length} model file(s) in ${modelsDir} (profile ${profile}):\n  ${absent.join('\n  ')}\nfetch them with: ${fetchCommand(profile)}`);
    process.exit(1);
  }
  console.log(`all ${requiredFiles(files).length} model files of profile ${profile} are present in ${modelsDir}`);
  process.exit(0);
}

if (profile === 'test') {
  await writeTinyWhisper(dirname(files.asr.encoder));
  await writeTinyQwen(files.llm.gguf);
  console.log(`wrote the tiny test models to ${dirname(files.llm.gguf)}`);
  process.exit(0);
}

console.error('downloading the production models is not built yet (deployment issue); use --profile test or --check');
process.exit(1);
