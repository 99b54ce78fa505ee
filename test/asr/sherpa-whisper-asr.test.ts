/**
 * The ASR engine for real: sherpa-onnx-node loads the tiny generated Whisper-format model and runs
 * its Whisper decode path on espeak-ng speech. The tiny model always says "hello world".
 */
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { TINY_WHISPER_TRANSCRIPT, writeTinyWhisper } from '../../builder/tiny-models/tiny-whisper.js';
import { SherpaWhisperAsr, sherpaHasCuda, splitIntoWindows, type WhisperAsrConfig } from '../../src/asr/sherpa-whisper-asr.js';
import { ConfigError } from '../../src/errors.js';
import { Logger } from '../../src/log/logger.js';
import { makeUtterance } from '../fixtures/speech.js';
import { scratchDir, tinyWhisperFiles } from '../helpers/tiny-models.js';

const lines: string[] = [];
const log = new Logger({ level: 'DEBUG', jsonLines: true, write: (line) => lines.push(line) });
let config: WhisperAsrConfig;
let asr: SherpaWhisperAsr;

beforeAll(async () => {
  const files = await tinyWhisperFiles();
  config = { ...files, provider: 'cpu', numThreads: 1 };
  asr = await SherpaWhisperAsr.load(config, log);
});

describe('SherpaWhisperAsr on the tiny Whisper model', () => {
  it('decodes an espeak-ng question through sherpa-onnx into the transcript the model gives', async () => {
    const utterance = await makeUtterance([{ silenceMs: 200 }, { say: 'What time is it in Tokyo?' }, { silenceMs: 200 }]);
    const transcript = await asr.transcribe(utterance.samples);
    expect(transcript.text).toBe(TINY_WHISPER_TRANSCRIPT);
    expect(transcript.windows).toBe(1);
    expect(transcript.asrMs).toBeGreaterThan(0);
    expect(transcript.audioMs).toBeCloseTo((utterance.samples.length / 16_000) * 1000);
  });

  it('splits audio over 30 s into windows instead of truncating it', async () => {
    const long = new Float32Array(16_000 * 65).map((_, i) => 0.1 * Math.sin(i / 5) * (Math.floor(i / 16_000) % 3 === 0 ? 0 : 1));
    const windows = splitIntoWindows(long);
    expect(windows.length).toBe(3);
    expect(windows.every((w) => w.length <= 28 * 16_000)).toBe(true);
    expect(windows.reduce((n, w) => n + w.length, 0)).toBe(long.length);
    const transcript = await asr.transcribe(long);
    expect(transcript.text).toBe(`${TINY_WHISPER_TRANSCRIPT} ${TINY_WHISPER_TRANSCRIPT} ${TINY_WHISPER_TRANSCRIPT}`);
  });

  // About a machine without GPU libraries; on the GPU image it does not apply.
  it.skipIf(sherpaHasCuda())('fails fast when CUDA is required (S2S_DEVICE=cuda) and the GPU libraries are absent', async () => {
    await expect(SherpaWhisperAsr.load({ ...config, provider: 'cuda' }, log)).rejects.toThrow(/CUDA was required but sherpa-onnx has no CUDA libraries/);
  });

  it('names a missing file and how to fetch it', async () => {
    const missing = { ...config, decoder: join(await scratchDir(), 'absent-decoder.onnx'), fetchHint: 'run npm run models' };
    await expect(SherpaWhisperAsr.load(missing, log)).rejects.toThrow(/ASR decoder file is missing: .*absent-decoder\.onnx \(run npm run models\)/);
  });

  it('refuses a corrupt encoder with a clear error', async () => {
    const corrupt = join(await scratchDir(), 'corrupt-encoder.onnx');
    await writeFile(corrupt, Buffer.from('this is not an onnx file at all, just text'));
    await expect(SherpaWhisperAsr.load({ ...config, encoder: corrupt }, log)).rejects.toThrow(ConfigError);
  });

  it('a Whisper export missing a metadata key is refused before sherpa-onnx sees it (which would end the process)', async () => {
    const dir = join(await scratchDir(), 'broken-whisper');
    const files = await writeTinyWhisper(dir, { omitMetadata: ['sot'] });
    // In a child process: if the check failed, sherpa-onnx would kill that process with code 255, not this one.
    const script = `
      import { SherpaWhisperAsr } from './src/asr/sherpa-whisper-asr.ts';
      import { Logger } from './src/log/logger.ts';
      const log = new Logger({ level: 'ERROR', jsonLines: true, write: () => {} });
      try {
        await SherpaWhisperAsr.load({ ...${JSON.stringify(files)}, provider: 'cpu', numThreads: 1 }, log);
        console.log('loaded');
      } catch (error) { console.log('refused: ' + error.message); }
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(0);
    expect(stdout).toMatch(/refused: ASR encoder .* lacks Whisper metadata keys sherpa-onnx needs: sot/);
  });
});
