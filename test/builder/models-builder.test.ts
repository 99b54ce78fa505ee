/**
 * The model builder against a fake Hugging Face Hub and a fake of GitHub's raw files on loopback: the whole
 * `npm run models` run (models, the tokenizer into the TTS model folder, the voice presets fetched and converted
 * once), resume after an interrupted transfer, a bad checksum, a 404, a gated repo, and `--check`. The Python
 * side (`python -m s2s_tts.voices convert`, `python -m s2s_tts.tiny_model`) is a double that logs its calls.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fetchFile, listRemoteFiles, readManifest, resolveCommit } from '../../builder/hub-download.js';
import { ASR_REPO, LLM_REPO, TTS_REPO, TTS_TOKENIZER_FALLBACK, TTS_TOKENIZER_PATHS } from '../../builder/model-sources.js';
import { fetchUrlFile } from '../../builder/url-download.js';
import { SMART_TURN_V3_2 } from '../../src/models/registry.js';
import { FakeHubDouble } from '../doubles/fake-hub-double.js';
import { FakeRawFilesDouble } from '../doubles/fake-raw-files-double.js';
import { realSmartTurn } from '../helpers/smart-turn-wheel.js';

let hub: FakeHubDouble;
let raw: FakeRawFilesDouble;
let dir: string;
/**
 * The turn model is pinned by checksum, so only the real file passes: the hub serves it when the
 * pinned pipecat-ai wheel could be had; otherwise the builder runs as with S2S_TURN_MODEL=off.
 */
let turnModel: Buffer | null = null;

beforeAll(async () => {
  const real = await realSmartTurn();
  if (real.path) turnModel = await readFile(real.path);
  else console.warn(`the builder runs without the turn model: ${real.skip}`);
});

/** The tokenizer repo the fake VibeVoice model's preprocessor_config.json names. */
const NAMED_TOKENIZER = 'Qwen/Qwen2.5-0.5B';
const VOICES = ['en-Carter_man', 'en-Emma_woman', 'de-Spk0_man'];
const TTS_DIR = 'tts/VibeVoice-Realtime-0.5B';
const PYTHON_DOUBLE = resolve('test/doubles/tts-python-double.sh');

const gitSha1 = (content: Buffer) => createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex');

function fillHub(h: FakeHubDouble) {
  h.addFile(ASR_REPO, 'small.en-encoder.int8.onnx', { content: randomBytes(40_000), lfs: true });
  h.addFile(ASR_REPO, 'small.en-decoder.int8.onnx', { content: randomBytes(30_000), lfs: true });
  h.addFile(ASR_REPO, 'small.en-tokens.txt', { content: Buffer.from('PHx... 0\n'.repeat(100)) });
  h.addFile(ASR_REPO, 'small.en-encoder.onnx', { content: randomBytes(10), lfs: true });
  h.addFile(ASR_REPO, 'small.en-decoder.onnx', { content: randomBytes(20), lfs: true });
  h.addFile(ASR_REPO, 'small.en-encoder.fp16.onnx', { content: randomBytes(5), lfs: true });
  h.addFile(LLM_REPO, 'qwen2.5-1.5b-instruct-q4_k_m.gguf', { content: randomBytes(200_000), lfs: true });
  h.addFile(LLM_REPO, 'qwen2.5-1.5b-instruct-q8_0.gguf', { content: randomBytes(1_000), lfs: true });
  h.addFile(TTS_REPO, 'config.json', { content: Buffer.from('{"model_type":"vibevoice_streaming"}') });
  h.addFile(TTS_REPO, 'model.safetensors', { content: randomBytes(120_000), lfs: true });
  h.addFile(TTS_REPO, 'README.md', { content: Buffer.from('# docs') });
  h.addFile(TTS_REPO, 'preprocessor_config.json', { content: Buffer.from(JSON.stringify({ speech_tok_compress_ratio: 3200, language_model_pretrained_name: NAMED_TOKENIZER })) });
  for (const repo of [NAMED_TOKENIZER, TTS_TOKENIZER_FALLBACK]) {
    for (const name of [...TTS_TOKENIZER_PATHS, 'config.json']) h.addFile(repo, name, { content: Buffer.from(`{"${repo}/${name}": true}`) });
  }
  h.heads.set(SMART_TURN_V3_2.repo, SMART_TURN_V3_2.revision);
  if (turnModel) h.addFile(SMART_TURN_V3_2.repo, SMART_TURN_V3_2.file, { content: turnModel, lfs: true });
}

/** The fake raw server's presets, and the pins file naming them (as S2S_VOICE_PRESETS_PINS). */
async function fillRaw(r: FakeRawFilesDouble): Promise<string> {
  for (const name of VOICES) r.files.set(`${name}.pt`, randomBytes(30_000));
  const pins = join(dir, '..', `${dir.split('/').pop()}-pins.json`);
  await writeFile(pins, JSON.stringify(VOICES.map((name) => ({ name, gitSha1: gitSha1(r.files.get(`${name}.pt`)!) }))));
  return pins;
}

let pinsFile: string;
let pythonLog: string;

beforeEach(async () => {
  hub = await FakeHubDouble.start();
  raw = await FakeRawFilesDouble.start();
  fillHub(hub);
  dir = await mkdtemp(join(tmpdir(), 's2s-volume-'));
  pinsFile = await fillRaw(raw);
  pythonLog = `${dir}-python.log`;
});
afterEach(async () => {
  await hub.close();
  await raw.close();
});

const pythonCalls = async () => (await readFile(pythonLog, 'utf8').catch(() => '')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as string[]);

function runBuilder(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'builder/models.ts', '--models-dir', dir, ...args], {
    env: {
      ...process.env,
      HF_ENDPOINT: hub.url,
      HF_TOKEN: '',
      S2S_VOICE_PRESETS_URL: raw.url,
      S2S_VOICE_PRESETS_PINS: pinsFile,
      S2S_TTS_PYTHON: PYTHON_DOUBLE,
      TTS_PYTHON_DOUBLE_LOG: pythonLog,
      TTS_PYTHON_DOUBLE_NODE: process.execPath,
      ...(turnModel ? {} : { S2S_TURN_MODEL: 'off' }),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise<{ code: number | null; out: string }>((resolve) => child.once('exit', (code) => resolve({ code, out })));
}

/** Every tokenizer file is in the TTS model folder's tokenizer/, as the repo has it. */
async function expectTokenizer(repo: string) {
  for (const name of TTS_TOKENIZER_PATHS) {
    const content = await readFile(join(dir, TTS_DIR, 'tokenizer', name));
    expect(content.equals(hub.repos.get(repo)!.get(name)!.content), name).toBe(true);
  }
}

describe('npm run models against a fake hub', () => {
  it('downloads every production model, lays the tokenizer and converted voices into the TTS folder, and --check passes', async () => {
    const first = await runBuilder([]);
    expect(first.out).not.toMatch(/problem/);
    expect(first.code, first.out).toBe(0);
    const gguf = await readFile(join(dir, 'llm', 'qwen2.5-1.5b-instruct-q4_k_m.gguf'));
    expect(gguf.equals(hub.repos.get(LLM_REPO)!.get('qwen2.5-1.5b-instruct-q4_k_m.gguf')!.content)).toBe(true);
    expect((await stat(join(dir, 'asr', 'sherpa-onnx-whisper-small.en', 'small.en-tokens.txt'))).size).toBe(900);
    // The engine's model folder: upstream's files, the tokenizer the preprocessor config names, the voices.
    expect((await readdir(join(dir, TTS_DIR))).sort()).toEqual(['config.json', 'model.safetensors', 'preprocessor_config.json', 'tokenizer', 'voices']);
    expect((await readdir(join(dir, TTS_DIR, 'tokenizer'))).sort()).toEqual([...TTS_TOKENIZER_PATHS].sort());
    await expectTokenizer(NAMED_TOKENIZER);
    // Every preset fetched from the raw files at the pinned names, and converted once, all in one call.
    expect((await readdir(join(dir, TTS_DIR, 'voices'))).sort()).toEqual(VOICES.map((v) => `${v}.safetensors`).sort());
    for (const name of VOICES) {
      expect((await readFile(join(dir, 'tts', 'voice-presets', `${name}.pt`))).equals(raw.files.get(`${name}.pt`)!)).toBe(true);
      const sha = createHash('sha256').update(raw.files.get(`${name}.pt`)!).digest('hex');
      expect(await readFile(join(dir, TTS_DIR, 'voices', `${name}.safetensors`), 'utf8')).toBe(`converted ${sha}`);
    }
    const calls = await pythonCalls();
    expect(calls).toHaveLength(1);
    expect(calls[0]!.slice(0, 3)).toEqual(['-m', 's2s_tts.voices', 'convert']);
    expect(calls[0]!.slice(-4)).toEqual(['--out', join(dir, TTS_DIR, 'voices'), '--model-config', join(dir, TTS_DIR, 'config.json')]);
    // Every hub file was fetched at the head commit, whatever its own last commit.
    const fileReads = hub.requests.filter((r) => r.path.includes('/resolve/'));
    expect(fileReads.length).toBeGreaterThan(0);
    expect(fileReads.filter((r) => r.path.includes('/resolve/main/'))).toEqual([]);
    const manifest = await readManifest(dir);
    // Whisper in both precisions (fp32 for CUDA, int8 for CPU), nothing else of its repo.
    expect(Object.keys(manifest.files).sort()).toEqual(
      [
        'asr/sherpa-onnx-whisper-small.en/small.en-decoder.int8.onnx',
        'asr/sherpa-onnx-whisper-small.en/small.en-decoder.onnx',
        'asr/sherpa-onnx-whisper-small.en/small.en-encoder.int8.onnx',
        'asr/sherpa-onnx-whisper-small.en/small.en-encoder.onnx',
        'asr/sherpa-onnx-whisper-small.en/small.en-tokens.txt',
        'llm/qwen2.5-1.5b-instruct-q4_k_m.gguf',
        `${TTS_DIR}/config.json`,
        `${TTS_DIR}/model.safetensors`,
        `${TTS_DIR}/preprocessor_config.json`,
        ...TTS_TOKENIZER_PATHS.map((name) => `${TTS_DIR}/tokenizer/${name}`),
        ...VOICES.map((name) => `tts/voice-presets/${name}.pt`),
        ...(turnModel ? ['turn/smart-turn-v3.2-cpu.onnx'] : []),
      ].sort(),
    );
    // The turn model comes from its pinned commit, whatever the other repos' revision.
    if (turnModel) expect(manifest.files['turn/smart-turn-v3.2-cpu.onnx']).toMatchObject({ revision: SMART_TURN_V3_2.revision, sha256: SMART_TURN_V3_2.sha256 });
    expect(manifest.files['llm/qwen2.5-1.5b-instruct-q4_k_m.gguf']!.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(manifest.files['llm/qwen2.5-1.5b-instruct-q4_k_m.gguf']!.revision).toBe(hub.headCommit(LLM_REPO));
    expect(manifest.files[`${TTS_DIR}/tokenizer/vocab.json`]!.repo).toBe(NAMED_TOKENIZER);
    expect(manifest.files['tts/voice-presets/en-Carter_man.pt']).toMatchObject({
      repo: 'microsoft/VibeVoice',
      revision: 'e73d1e17c3754f046352014856a922f8208fb5d3',
      path: 'demo/voices/streaming_model/en-Carter_man.pt',
      git_sha1: gitSha1(raw.files.get('en-Carter_man.pt')!),
    });

    // A second run finds everything in place: it transfers nothing and converts nothing.
    const firstRunRequests = hub.requests.length;
    const firstRawRequests = raw.requests.length;
    expect((await runBuilder([])).code).toBe(0);
    // Only what the second run asked for: no file body at all (a 0-0 range probe is not a transfer).
    const transfers = hub.requests.slice(firstRunRequests).filter((r) => r.path.includes('/resolve/') && r.range !== 'bytes=0-0');
    expect(transfers.map((r) => r.path)).toEqual([]);
    expect(raw.requests.slice(firstRawRequests)).toEqual([]);
    expect(await pythonCalls()).toHaveLength(1);
    expect((await runBuilder(['--check'])).code).toBe(0);

    // --check knows the converted voices and the tokenizer; a lost voice is converted again (that one only).
    await rm(join(dir, TTS_DIR, 'voices', 'en-Emma_woman.safetensors'));
    await rm(join(dir, TTS_DIR, 'tokenizer', 'merges.txt'));
    const broken = await runBuilder(['--check']);
    expect(broken.code).toBe(1);
    expect(broken.out).toMatch(/missing {2}tts: converted voice en-Emma_woman: .*voices\/en-Emma_woman\.safetensors/);
    expect(broken.out).toMatch(/missing {2}tts: Qwen2\.5 tokenizer: .*tokenizer\/merges\.txt/);
    expect((await runBuilder([])).code).toBe(0);
    const again = await pythonCalls();
    expect(again).toHaveLength(2);
    expect(again[1]!.slice(3, -4)).toEqual([join(dir, 'tts', 'voice-presets', 'en-Emma_woman.pt')]);
    expect((await runBuilder(['--check'])).code).toBe(0);
  }, 90_000);

  it('takes the fallback tokenizer (Qwen/Qwen2.5-1.5B) when preprocessor_config.json names none, as VibeVoice does', async () => {
    hub.addFile(TTS_REPO, 'preprocessor_config.json', { content: Buffer.from(JSON.stringify({ speech_tok_compress_ratio: 3200 })) });
    const result = await runBuilder([]);
    expect(result.code, result.out).toBe(0);
    await expectTokenizer(TTS_TOKENIZER_FALLBACK);
  }, 60_000);

  it('a voice preset that does not match its pinned git sha1 is refused and nothing is converted', async () => {
    raw.corrupt.add('en-Emma_woman.pt');
    const result = await runBuilder([]);
    expect(result.code).toBe(1);
    expect(result.out).toMatch(/microsoft\/VibeVoice\/demo\/voices\/streaming_model\/en-Emma_woman\.pt: checksum mismatch \(git sha1 [0-9a-f]+, expected [0-9a-f]+\)/);
    await expect(stat(join(dir, 'tts', 'voice-presets', 'en-Emma_woman.pt'))).rejects.toThrow();
    expect(await pythonCalls()).toEqual([]);
  }, 60_000);

  it('the test profile makes the tiny TTS model with python -m s2s_tts.tiny_model, once', async () => {
    const result = await runBuilder(['--profile', 'test']);
    expect(result.code, result.out).toBe(0);
    const tiny = join(dir, 'test', 'tiny-vibevoice');
    expect((await readdir(tiny)).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer', 'voices']);
    const calls = await pythonCalls();
    expect(calls).toHaveLength(1);
    expect(calls[0]!.slice(0, 2)).toEqual(['-m', 's2s_tts.tiny_model']);
    expect((await runBuilder(['--profile', 'test'])).code).toBe(0);
    expect(await pythonCalls()).toHaveLength(1);
    expect((await runBuilder(['--profile', 'test', '--check'])).code).toBe(0);
    // Without a Python that has s2s_tts, the error says how to make the venv.
    await rm(tiny, { recursive: true });
    const noPython = await runBuilder(['--profile', 'test'], { S2S_TTS_PYTHON: join(dir, 'no-such-python') });
    expect(noPython.code).toBe(1);
    expect(noPython.out).toContain('bash tts-server/setup-venv.sh');
  }, 60_000);

  it('--check on an empty folder lists exactly what is missing and exits non-zero', async () => {
    const result = await runBuilder(['--check']);
    expect(result.code).toBe(1);
    const missing = result.out.split('\n').filter((l) => l.trim().startsWith('missing'));
    // 5 Whisper files (both precisions, one tokens file), the GGUF, the VibeVoice config and weights, the 4
    // tokenizer files, each voice preset with its converted voice, and the turn model unless it is off.
    const turn = turnModel ? 1 : 0;
    expect(missing).toHaveLength(5 + 1 + 2 + 4 + 2 * VOICES.length + turn);
    const int8Only = await runBuilder(['--check', '--asr-precision', 'int8']);
    expect(int8Only.out.split('\n').filter((l) => l.trim().startsWith('missing'))).toHaveLength(3 + 1 + 2 + 4 + 2 * VOICES.length + turn);
    if (turnModel) expect(result.out).toContain('turn/smart-turn-v3.2-cpu.onnx');
    const turnOff = await runBuilder(['--check'], { S2S_TURN_MODEL: 'off' });
    expect(turnOff.out).not.toContain('smart-turn');
    expect(result.out).toContain('small.en-encoder.int8.onnx');
    expect(result.out).toContain('qwen2.5-1.5b-instruct-q4_k_m.gguf');
    expect(result.out).toContain('VibeVoice-Realtime-0.5B/config.json');
    expect(result.out).toContain('VibeVoice-Realtime-0.5B/tokenizer/tokenizer.json');
    expect(result.out).toContain('voice-presets/en-Carter_man.pt');
    expect(result.out).toContain('fetch the models with: npm run models');
  });

  it('the bundled builder (dist/models.mjs, as used inside the image) checks a folder', async () => {
    const child = spawn(process.execPath, ['dist/models.mjs', '--check', '--models-dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    expect(await new Promise((resolve) => child.once('exit', resolve))).toBe(1);
    expect(out).toContain('missing');
  });

  it('refuses a turn model whose hub checksum is not the pinned one, naming it', async () => {
    hub.addFile(SMART_TURN_V3_2.repo, SMART_TURN_V3_2.file, { content: randomBytes(1_000), lfs: true });
    const result = await runBuilder([], { S2S_TURN_MODEL: 'on' });
    expect(result.code).toBe(1);
    expect(result.out).toMatch(new RegExp(`pipecat-ai/smart-turn-v3@${SMART_TURN_V3_2.revision}/smart-turn-v3.2-cpu.onnx: the hub lists sha256 [0-9a-f]{64}, pinned ${SMART_TURN_V3_2.sha256}`));
    await expect(stat(join(dir, 'turn', SMART_TURN_V3_2.file))).rejects.toThrow();
  }, 60_000);

  it('a gated repo needs HF_TOKEN', async () => {
    hub.gated.set(LLM_REPO, 'hf_secret_token');
    const denied = await runBuilder([]);
    expect(denied.code).toBe(1);
    expect(denied.out).toMatch(/Qwen\/Qwen2\.5-1\.5B-Instruct-GGUF.*(401|restricted)/);
    const allowed = await runBuilder([], { HF_TOKEN: 'hf_secret_token' });
    expect(allowed.code).toBe(0);
  }, 60_000);
});

describe('file transfers', () => {
  const options = () => ({ hubUrl: hub.url, attempts: 4 });

  it('an unknown revision is a clear error', async () => {
    await expect(resolveCommit(NAMED_TOKENIZER, 'v9', options())).rejects.toThrow(/Qwen\/Qwen2\.5-0\.5B@v9: could not resolve the revision to a commit/);
  });

  it('a raw file resumes an interrupted transfer with a Range request and is verified by its git blob sha1', async () => {
    const content = raw.files.get('en-Carter_man.pt')!;
    raw.interruptNext.set('en-Carter_man.pt', 12_000);
    const dest = join(dir, 'v.pt');
    const manifest = { version: 1 as const, files: {} };
    const file = { url: `${raw.url}/en-Carter_man.pt`, repo: 'microsoft/VibeVoice', revision: 'c', path: 'en-Carter_man.pt', gitSha1: gitSha1(content) };
    expect(await fetchUrlFile(file, dest, manifest, 'v.pt', { attempts: 3 })).toBe('downloaded');
    const ranges = raw.requests.map((r) => r.range);
    expect(ranges[0]).toBeNull();
    expect(ranges).toHaveLength(2);
    expect(Number(/^bytes=(\d+)-$/.exec(ranges[1]!)?.[1])).toBeGreaterThan(0);
    expect((await readFile(dest)).equals(content)).toBe(true);
    expect(await fetchUrlFile(file, dest, manifest, 'v.pt')).toBe('present');
    await expect(fetchUrlFile({ ...file, url: `${raw.url}/nobody.pt` }, join(dir, 'n.pt'), manifest, 'n.pt')).rejects.toThrow(/nobody\.pt was not found \(404\)/);
  });

  it('resumes an interrupted transfer from where it stopped', async () => {
    const [file] = await listRemoteFiles(LLM_REPO, 'main', options(), ['qwen2.5-1.5b-instruct-q4_k_m.gguf']);
    hub.interruptNext.set(`${LLM_REPO}/qwen2.5-1.5b-instruct-q4_k_m.gguf`, 50_000);
    const dest = join(dir, 'model.gguf');
    const manifest = { version: 1 as const, files: {} };
    expect(await fetchFile(file!, dest, manifest, 'model.gguf', options())).toBe('downloaded');
    const ranges = hub.requests.filter((r) => r.path.endsWith('q4_k_m.gguf')).map((r) => r.range);
    // It resumes from what reached the disk (`bytes=0-0` requests are size probes): past 0 and at most the
    // cut, since on a loaded machine the last bytes before the cut may not have been read yet.
    const resumedFrom = ranges.flatMap((r) => (r && !r.endsWith('-0') ? [Number(/^bytes=(\d+)-/.exec(r)?.[1])] : []));
    expect(resumedFrom).toHaveLength(1);
    expect(resumedFrom[0]).toBeGreaterThan(0);
    expect(resumedFrom[0]).toBeLessThanOrEqual(50_000);
    expect((await readFile(dest)).equals(hub.repos.get(LLM_REPO)!.get('qwen2.5-1.5b-instruct-q4_k_m.gguf')!.content)).toBe(true);
  });

  it('a bad checksum is refused: nothing is placed and the partial file is removed', async () => {
    const [file] = await listRemoteFiles(TTS_REPO, 'main', options(), ['model.safetensors']);
    hub.corrupt.add(`${TTS_REPO}/model.safetensors`);
    const dest = join(dir, 'model.safetensors');
    await expect(fetchFile(file!, dest, { version: 1, files: {} }, 'model.safetensors', options())).rejects.toThrow(/checksum mismatch \(sha256 [0-9a-f]+, expected [0-9a-f]+\)/);
    await expect(stat(dest)).rejects.toThrow();
    await expect(stat(`${dest}.part`)).rejects.toThrow();
  });

  it('a small git file is checked against its git blob sha1', async () => {
    const [file] = await listRemoteFiles(ASR_REPO, 'main', options(), ['small.en-tokens.txt']);
    expect(file!.sha256).toBeNull();
    hub.corrupt.add(`${ASR_REPO}/small.en-tokens.txt`);
    await expect(fetchFile(file!, join(dir, 't.txt'), { version: 1, files: {} }, 't.txt', options())).rejects.toThrow(/git sha1/);
  });

  it('a file missing from the repo is a clear 404 error', async () => {
    await expect(listRemoteFiles(LLM_REPO, 'main', options(), ['qwen2.5-1.5b-instruct-q5_k_m.gguf'])).rejects.toThrow(
      'Qwen/Qwen2.5-1.5B-Instruct-GGUF@main: qwen2.5-1.5b-instruct-q5_k_m.gguf is not in the repository',
    );
    const [file] = await listRemoteFiles(LLM_REPO, 'main', options(), ['qwen2.5-1.5b-instruct-q8_0.gguf']);
    hub.repos.get(LLM_REPO)!.delete('qwen2.5-1.5b-instruct-q8_0.gguf');
    await expect(fetchFile(file!, join(dir, 'q8.gguf'), { version: 1, files: {} }, 'q8.gguf', options())).rejects.toThrow(/was not found \(404\)/);
  });
});
