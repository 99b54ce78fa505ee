// A test double of the Python that runs s2s_tts, for the builder's tests (S2S_TTS_PYTHON, through
// tts-python-double.sh): it answers the two
// CLIs the builder calls without torch, and appends each call's arguments to $TTS_PYTHON_DOUBLE_LOG.
//   -m s2s_tts.voices convert PT... --out DIR --model-config CONFIG   writes DIR/<name>.safetensors (the source's sha256 inside)
//   -m s2s_tts.tiny_model DIR                   writes config.json, model.safetensors, tokenizer/*, voices/
import { createHash } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

const args = process.argv.slice(2);
if (process.env['TTS_PYTHON_DOUBLE_LOG']) appendFileSync(process.env['TTS_PYTHON_DOUBLE_LOG'], JSON.stringify(args) + '\n');
if (args[0] === '-m' && args[1] === 's2s_tts.voices' && args[2] === 'convert') {
  const out = args[args.indexOf('--out') + 1]!;
  mkdirSync(out, { recursive: true });
  for (const source of args.slice(3, args.indexOf('--out'))) {
    const sha = createHash('sha256').update(readFileSync(source)).digest('hex');
    writeFileSync(join(out, `${basename(source, '.pt')}.safetensors`), `converted ${sha}`);
  }
} else if (args[0] === '-m' && args[1] === 's2s_tts.tiny_model') {
  const dir = args[2]!;
  mkdirSync(join(dir, 'tokenizer'), { recursive: true });
  mkdirSync(join(dir, 'voices'), { recursive: true });
  writeFileSync(join(dir, 'config.json'), '{"model_type":"vibevoice_streaming"}');
  writeFileSync(join(dir, 'model.safetensors'), 'tiny weights');
  for (const name of ['tokenizer.json', 'tokenizer_config.json', 'vocab.json', 'merges.txt']) writeFileSync(join(dir, 'tokenizer', name), '{}');
  writeFileSync(join(dir, 'voices', 'en-Carter_man.safetensors'), 'tiny voice');
} else {
  console.error(`tts-python-double: unexpected arguments ${JSON.stringify(args)}`);
  process.exit(2);
}
