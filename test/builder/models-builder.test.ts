/**
 * The model builder against a fake Hugging Face Hub on loopback: the whole `npm run models` run,
 * resume after an interrupted transfer, a bad checksum, a 404, a gated repo, and `--check`.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fetchFile, listRemoteFiles, readManifest } from '../../builder/hub-download.js';
import { ASR_REPO, LLM_REPO, TTS_REPO, TTS_TOKENIZER_REPO } from '../../builder/model-sources.js';
import { FAKE_COMMIT, FakeHubDouble } from '../doubles/fake-hub-double.js';

let hub: FakeHubDouble;
let dir: string;

function fillHub(h: FakeHubDouble) {
  h.addFile(ASR_REPO, 'small.en-encoder.int8.onnx', { content: randomBytes(40_000), lfs: true });
  h.addFile(ASR_REPO, 'small.en-decoder.int8.onnx', { content: randomBytes(30_000), lfs: true });
  h.addFile(ASR_REPO, 'small.en-tokens.txt', { content: Buffer.from('PHx... 0\n'.repeat(100)) });
  h.addFile(ASR_REPO, 'small.en-encoder.onnx', { content: randomBytes(10), lfs: true });
  h.addFile(LLM_REPO, 'qwen2.5-1.5b-instruct-q4_k_m.gguf', { content: randomBytes(200_000), lfs: true });
  h.addFile(LLM_REPO, 'qwen2.5-1.5b-instruct-q8_0.gguf', { content: randomBytes(1_000), lfs: true });
  h.addFile(TTS_REPO, 'config.json', { content: Buffer.from('{"model_type":"vibevoice_streaming"}') });
  h.addFile(TTS_REPO, 'model.safetensors', { content: randomBytes(120_000), lfs: true });
  h.addFile(TTS_REPO, 'README.md', { content: Buffer.from('# docs') });
  for (const name of ['tokenizer.json', 'tokenizer_config.json', 'vocab.json', 'merges.txt', 'config.json']) {
    h.addFile(TTS_TOKENIZER_REPO, name, { content: Buffer.from(`{"${name}": true}`) });
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
    env: { ...process.env, HF_ENDPOINT: hub.url, HF_HOME: join(dir, 'hf-home'), HF_TOKEN: '', ...env },
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
    expect(await readdir(join(dir, 'tts', 'VibeVoice-Realtime-0.5B'))).toEqual(['config.json', 'model.safetensors']);
    // The tokenizer VibeVoice loads by name is in the HF cache layout.
    const snapshot = join(dir, 'hf-home', 'hub', 'models--Qwen--Qwen2.5-0.5B', 'snapshots', FAKE_COMMIT);
    expect((await readdir(snapshot)).sort()).toEqual(['config.json', 'merges.txt', 'tokenizer.json', 'tokenizer_config.json', 'vocab.json']);
    const manifest = await readManifest(dir);
    expect(Object.keys(manifest.files).sort()).toEqual([
      'asr/sherpa-onnx-whisper-small.en/small.en-decoder.int8.onnx',
      'asr/sherpa-onnx-whisper-small.en/small.en-encoder.int8.onnx',
      'asr/sherpa-onnx-whisper-small.en/small.en-tokens.txt',
      'llm/qwen2.5-1.5b-instruct-q4_k_m.gguf',
      'tts/VibeVoice-Realtime-0.5B/config.json',
      'tts/VibeVoice-Realtime-0.5B/model.safetensors',
    ]);
    expect(manifest.files['llm/qwen2.5-1.5b-instruct-q4_k_m.gguf']!.sha256).toMatch(/^[0-9a-f]{64}$/);

    // A second run finds everything in place and transfers nothing.
    const transfersBefore = hub.requests.filter((r) => r.path.includes('/resolve/') && r.range !== 'bytes=0-0').length;
    expect((await runBuilder([])).code).toBe(0);
    const transfersAfter = hub.requests.filter((r) => r.path.includes('/resolve/') && r.range !== 'bytes=0-0' && !r.path.includes('Qwen2.5-0.5B')).length;
    expect(transfersAfter).toBeLessThanOrEqual(transfersBefore);
    expect((await runBuilder(['--check'])).code).toBe(0);
  }, 60_000);

  it('--check on an empty folder lists exactly what is missing and exits non-zero', async () => {
    const result = await runBuilder(['--check']);
    expect(result.code).toBe(1);
    const missing = result.out.split('\n').filter((l) => l.trim().startsWith('missing'));
    expect(missing).toHaveLength(5);
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

  it('resumes an interrupted transfer from where it stopped', async () => {
    const [file] = await listRemoteFiles(LLM_REPO, 'main', options(), ['qwen2.5-1.5b-instruct-q4_k_m.gguf']);
    hub.interruptNext.set(`${LLM_REPO}/qwen2.5-1.5b-instruct-q4_k_m.gguf`, 50_000);
    const dest = join(dir, 'model.gguf');
    const manifest = { version: 1 as const, files: {} };
    expect(await fetchFile(file!, dest, manifest, 'model.gguf', options())).toBe('downloaded');
    const ranges = hub.requests.filter((r) => r.path.endsWith('q4_k_m.gguf')).map((r) => r.range);
    expect(ranges.some((r) => r?.startsWith('bytes=50000-'))).toBe(true);
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
