/**
 * The model builder against a fake Hugging Face Hub on loopback: the whole `npm run models` run,
 * resume after an interrupted transfer, a bad checksum, a 404, a gated repo, and `--check`. The
 * tokenizer VibeVoice loads by name is read back from the HF cache the way huggingface_hub does offline.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fetchFile, fetchIntoHfCache, listRemoteFiles, readManifest } from '../../builder/hub-download.js';
import { ASR_REPO, LLM_REPO, TTS_REPO, TTS_TOKENIZER_FALLBACK, TTS_TOKENIZER_PATHS } from '../../builder/model-sources.js';
import { SMART_TURN_V3_2 } from '../../src/models/registry.js';
import { FakeHubDouble } from '../doubles/fake-hub-double.js';
import { lookUpOffline } from '../helpers/hf-cache-offline.js';
import { realSmartTurn } from '../helpers/smart-turn-wheel.js';

let hub: FakeHubDouble;
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
    for (const name of TTS_TOKENIZER_PATHS) h.addFile(repo, name, { content: Buffer.from(`{"${repo}/${name}": true}`) });
  }
  h.heads.set(SMART_TURN_V3_2.repo, SMART_TURN_V3_2.revision);
  if (turnModel) h.addFile(SMART_TURN_V3_2.repo, SMART_TURN_V3_2.file, { content: turnModel, lfs: true });
}

const hfCache = () => join(dir, 'hf-home', 'hub');

/** Every tokenizer file resolves offline (refs -> snapshot -> file) to the hub's content. */
async function expectTokenizerOffline(repo: string) {
  for (const name of TTS_TOKENIZER_PATHS) {
    const found = lookUpOffline(hfCache(), repo, 'main', name);
    expect(found, `${repo}/${name} offline`).not.toBeNull();
    expect((await readFile(found!)).equals(hub.repos.get(repo)!.get(name)!.content), name).toBe(true);
  }
}

beforeEach(async () => {
  hub = await FakeHubDouble.start();
  fillHub(hub);
  dir = await mkdtemp(join(tmpdir(), 's2s-volume-'));
});
afterEach(async () => {
  await hub.close();
});

function runBuilder(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'builder/models.ts', '--models-dir', dir, ...args], {
    env: { ...process.env, HF_ENDPOINT: hub.url, HF_HOME: join(dir, 'hf-home'), HF_TOKEN: '', ...(turnModel ? {} : { S2S_TURN_MODEL: 'off' }), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise<{ code: number | null; out: string }>((resolve) => child.once('exit', (code) => resolve({ code, out })));
}

describe('npm run models against a fake hub', () => {
  it('downloads every production model, verifies it, writes a manifest, and --check passes', async () => {
    const first = await runBuilder([]);
    expect(first.out).not.toMatch(/problem/);
    expect(first.code).toBe(0);
    const gguf = await readFile(join(dir, 'llm', 'qwen2.5-1.5b-instruct-q4_k_m.gguf'));
    expect(gguf.equals(hub.repos.get(LLM_REPO)!.get('qwen2.5-1.5b-instruct-q4_k_m.gguf')!.content)).toBe(true);
    expect((await stat(join(dir, 'asr', 'sherpa-onnx-whisper-small.en', 'small.en-tokens.txt'))).size).toBe(900);
    expect((await readdir(join(dir, 'tts', 'VibeVoice-Realtime-0.5B'))).sort()).toEqual(['config.json', 'model.safetensors', 'preprocessor_config.json']);
    // The tokenizer VibeVoice loads by name (the one its preprocessor_config.json names) resolves
    // with the hub offline, through refs/main, in one snapshot: the repo's head commit.
    await expectTokenizerOffline(NAMED_TOKENIZER);
    const repoCache = join(hfCache(), 'models--Qwen--Qwen2.5-0.5B');
    expect(await readFile(join(repoCache, 'refs', 'main'), 'utf8')).toBe(hub.headCommit(NAMED_TOKENIZER));
    expect(await readdir(join(repoCache, 'snapshots'))).toEqual([hub.headCommit(NAMED_TOKENIZER)]);
    await expect(stat(join(hfCache(), 'models--Qwen--Qwen2.5-1.5B'))).rejects.toThrow();
    // Every file was fetched at the head commit, whatever its own last commit.
    const fileReads = hub.requests.filter((r) => r.path.includes('/resolve/'));
    expect(fileReads.length).toBeGreaterThan(0);
    expect(fileReads.filter((r) => r.path.includes('/resolve/main/'))).toEqual([]);
    const manifest = await readManifest(dir);
    // Whisper in both precisions (fp32 for CUDA, int8 for CPU), nothing else of its repo.
    expect(Object.keys(manifest.files).sort()).toEqual([
      'asr/sherpa-onnx-whisper-small.en/small.en-decoder.int8.onnx',
      'asr/sherpa-onnx-whisper-small.en/small.en-decoder.onnx',
      'asr/sherpa-onnx-whisper-small.en/small.en-encoder.int8.onnx',
      'asr/sherpa-onnx-whisper-small.en/small.en-encoder.onnx',
      'asr/sherpa-onnx-whisper-small.en/small.en-tokens.txt',
      'llm/qwen2.5-1.5b-instruct-q4_k_m.gguf',
      'tts/VibeVoice-Realtime-0.5B/config.json',
      'tts/VibeVoice-Realtime-0.5B/model.safetensors',
      'tts/VibeVoice-Realtime-0.5B/preprocessor_config.json',
      ...(turnModel ? ['turn/smart-turn-v3.2-cpu.onnx'] : []),
    ].sort());
    // The turn model comes from its pinned commit, whatever the other repos' revision.
    if (turnModel) expect(manifest.files['turn/smart-turn-v3.2-cpu.onnx']).toMatchObject({ revision: SMART_TURN_V3_2.revision, sha256: SMART_TURN_V3_2.sha256 });
    expect(manifest.files['llm/qwen2.5-1.5b-instruct-q4_k_m.gguf']!.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(manifest.files['llm/qwen2.5-1.5b-instruct-q4_k_m.gguf']!.revision).toBe(hub.headCommit(LLM_REPO));

    // A second run finds everything in place and transfers nothing.
    const firstRunRequests = hub.requests.length;
    expect((await runBuilder([])).code).toBe(0);
    // Only what the second run asked for: no file body at all (a 0-0 range probe is not a transfer).
    const transfers = hub.requests.slice(firstRunRequests).filter((r) => r.path.includes('/resolve/') && r.range !== 'bytes=0-0');
    expect(transfers.map((r) => r.path)).toEqual([]);
    expect((await runBuilder(['--check'])).code).toBe(0);

    // --check looks the tokenizer up as huggingface_hub does offline: without refs/main it is missing.
    await rm(join(repoCache, 'refs', 'main'));
    const broken = await runBuilder(['--check']);
    expect(broken.code).toBe(1);
    expect(broken.out).toMatch(/missing {2}Qwen\/Qwen2\.5-0\.5B@main in the HF cache/);
  }, 60_000);

  it('caches the fallback tokenizer (Qwen/Qwen2.5-1.5B) when preprocessor_config.json names none, as VibeVoice does', async () => {
    hub.addFile(TTS_REPO, 'preprocessor_config.json', { content: Buffer.from(JSON.stringify({ speech_tok_compress_ratio: 3200 })) });
    const result = await runBuilder([]);
    expect(result.code, result.out).toBe(0);
    await expectTokenizerOffline(TTS_TOKENIZER_FALLBACK);
    await expect(stat(join(hfCache(), 'models--Qwen--Qwen2.5-0.5B'))).rejects.toThrow();
  }, 60_000);

  it('--check on an empty folder lists exactly what is missing and exits non-zero', async () => {
    const result = await runBuilder(['--check']);
    expect(result.code).toBe(1);
    const missing = result.out.split('\n').filter((l) => l.trim().startsWith('missing'));
    // 5 Whisper files (both precisions, one tokens file), the GGUF, the VibeVoice model, the
    // tokenizer's ref in the HF cache, and the turn model unless it is off.
    const turn = turnModel ? 1 : 0;
    expect(missing).toHaveLength(8 + turn);
    const int8Only = await runBuilder(['--check', '--asr-precision', 'int8']);
    expect(int8Only.out.split('\n').filter((l) => l.trim().startsWith('missing'))).toHaveLength(6 + turn);
    if (turnModel) expect(result.out).toContain('turn/smart-turn-v3.2-cpu.onnx');
    const turnOff = await runBuilder(['--check'], { S2S_TURN_MODEL: 'off' });
    expect(turnOff.out).not.toContain('smart-turn');
    expect(result.out).toContain('small.en-encoder.int8.onnx');
    expect(result.out).toContain('qwen2.5-1.5b-instruct-q4_k_m.gguf');
    expect(result.out).toContain('VibeVoice-Realtime-0.5B/config.json');
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

  it('the HF cache resolves offline although each file was last changed in a different commit', async () => {
    const commits = new Set(TTS_TOKENIZER_PATHS.map((name) => hub.lastCommit(NAMED_TOKENIZER, name)));
    expect(commits.size).toBe(TTS_TOKENIZER_PATHS.length);
    await fetchIntoHfCache(NAMED_TOKENIZER, 'main', TTS_TOKENIZER_PATHS, hfCache(), options());
    await expectTokenizerOffline(NAMED_TOKENIZER);
    // A second run finds the snapshot complete and rewrites the same ref.
    await fetchIntoHfCache(NAMED_TOKENIZER, 'main', TTS_TOKENIZER_PATHS, hfCache(), options());
    await expectTokenizerOffline(NAMED_TOKENIZER);
  });

  it('an unknown revision is a clear error', async () => {
    await expect(fetchIntoHfCache(NAMED_TOKENIZER, 'v9', TTS_TOKENIZER_PATHS, hfCache(), options())).rejects.toThrow(
      /Qwen\/Qwen2\.5-0\.5B@v9: could not resolve the revision to a commit/,
    );
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
