/**
 * Where the engines run: S2S_DEVICE=auto resolved once, from what the machine has, for the LLM, the
 * TTS server and Whisper alike; the Whisper precision follows Whisper's device (fp32 on CUDA, int8
 * on CPU), with a warning for int8 on CUDA.
 */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hasNvidiaGpu, type Machine } from '../../handler/machine.js';
import { readPipelineConfig, resolveDevices } from '../../handler/pipeline-config.js';

const NO_GPU: Machine = { nvidiaGpu: false, sherpaCuda: false };
const GPU_IMAGE: Machine = { nvidiaGpu: true, sherpaCuda: true };
/** A GPU machine running the npm install (sherpa-onnx without its CUDA libraries). */
const GPU_NPM: Machine = { nvidiaGpu: true, sherpaCuda: false };

/** The value after `flag` in a command line. */
const argOf = (command: readonly string[], flag: string) => command[command.indexOf(flag) + 1];

function engines(env: Record<string, string>, machine: Machine) {
  const config = readPipelineConfig({ S2S_MODELS_DIR: '/models', ...env }, machine);
  return {
    config,
    llmGpu: config.engines.llm.gpu,
    ttsDevice: argOf(config.engines.tts.sidecar.command, '--device'),
    asrProvider: config.engines.asr.provider,
    encoder: config.engines.asr.encoder,
  };
}

describe('S2S_DEVICE=auto', () => {
  it('without a GPU every engine runs on CPU, Whisper int8 (VibeVoice is no longer sent to cuda)', () => {
    const { config, llmGpu, ttsDevice, asrProvider, encoder } = engines({ S2S_DEVICE: 'auto' }, NO_GPU);
    expect({ llmGpu, ttsDevice, asrProvider }).toEqual({ llmGpu: false, ttsDevice: 'cpu', asrProvider: 'cpu' });
    expect(encoder).toBe('/models/asr/sherpa-onnx-whisper-small.en/small.en-encoder.int8.onnx');
    expect(config.devices).toMatchObject({ requested: 'auto', device: 'cpu', asr: 'cpu', asrPrecision: 'int8' });
    expect(config.devices.reason).toMatch(/no NVIDIA GPU/);
    expect(config.warnings).toEqual([]);
  });

  it('with a GPU and sherpa-onnx CUDA libraries every engine runs on CUDA, Whisper fp32', () => {
    const { config, llmGpu, ttsDevice, asrProvider, encoder } = engines({ S2S_DEVICE: 'auto' }, GPU_IMAGE);
    expect({ llmGpu, ttsDevice, asrProvider }).toEqual({ llmGpu: 'cuda', ttsDevice: 'cuda', asrProvider: 'cuda' });
    expect(encoder).toBe('/models/asr/sherpa-onnx-whisper-small.en/small.en-encoder.onnx');
    expect(config.warnings).toEqual([]);
  });

  it('with a GPU but CPU-only sherpa-onnx, Whisper runs on CPU (int8) and the rest on CUDA, and the log says why', () => {
    const { config, llmGpu, ttsDevice, asrProvider, encoder } = engines({ S2S_DEVICE: 'auto' }, GPU_NPM);
    expect({ llmGpu, ttsDevice, asrProvider }).toEqual({ llmGpu: 'cuda', ttsDevice: 'cuda', asrProvider: 'cpu' });
    expect(encoder).toMatch(/small\.en-encoder\.int8\.onnx$/);
    expect(config.devices.reason).toMatch(/sherpa-onnx has no CUDA libraries/);
  });

  it('is resolved once: the engines never see `auto` (no engine falls back on its own at load)', () => {
    for (const machine of [NO_GPU, GPU_IMAGE, GPU_NPM]) {
      const { config, llmGpu, ttsDevice } = engines({ S2S_DEVICE: 'auto' }, machine);
      expect(llmGpu).not.toBe('auto');
      expect(ttsDevice).not.toBe('auto');
      expect(['cuda', 'cpu']).toContain(config.engines.asr.provider);
    }
  });
});

describe('Whisper precision follows its device', () => {
  it('production default (cuda): fp32 on CUDA; an explicit fp32 or int8 is kept', () => {
    expect(engines({}, GPU_IMAGE).config.devices).toMatchObject({ device: 'cuda', asr: 'cuda', asrPrecision: 'fp32' });
    expect(engines({ S2S_ASR_PRECISION: 'fp32', S2S_DEVICE: 'cpu' }, NO_GPU).encoder).toMatch(/small\.en-encoder\.onnx$/);
    expect(engines({ S2S_DEVICE: 'cpu' }, GPU_IMAGE).encoder).toMatch(/small\.en-encoder\.int8\.onnx$/);
  });

  it('int8 asked for on CUDA is kept but warned about', () => {
    const { config, encoder } = engines({ S2S_ASR_PRECISION: 'int8' }, GPU_IMAGE);
    expect(encoder).toMatch(/\.int8\.onnx$/);
    expect(config.warnings).toHaveLength(1);
    expect(config.warnings[0]).toMatch(/S2S_ASR_PRECISION=int8 with Whisper on CUDA.*use fp32/);
    expect(resolveDevices('cpu', 'int8', GPU_IMAGE).warnings).toEqual([]);
  });

  it('a bad precision is a clear config error', () => {
    expect(() => engines({ S2S_ASR_PRECISION: 'fp16' }, NO_GPU)).toThrow(/S2S_ASR_PRECISION/);
  });
});

describe('the GPU probe', () => {
  it('needs the driver control device and one GPU device', async () => {
    const dev = await mkdtemp(join(tmpdir(), 's2s-dev-'));
    expect(hasNvidiaGpu(dev)).toBe(false);
    await writeFile(join(dev, 'nvidiactl'), '');
    expect(hasNvidiaGpu(dev)).toBe(false);
    await mkdir(join(dev, 'nvidia-caps'));
    expect(hasNvidiaGpu(dev)).toBe(false);
    await writeFile(join(dev, 'nvidia0'), '');
    expect(hasNvidiaGpu(dev)).toBe(true);
    expect(hasNvidiaGpu(join(dev, 'absent'))).toBe(false);
  });
});

describe('the TTS server: engine, model folder, device and dtype, stream limit', () => {
  it('production: the real engine on CUDA in bfloat16, 16 streams, the model folder under the models dir, on loopback', () => {
    const { config } = engines({}, GPU_IMAGE);
    const { command } = config.engines.tts.sidecar;
    expect(command.slice(1, 3)).toEqual(['-m', 's2s_tts']);
    expect({ engine: argOf(command, '--engine'), dir: argOf(command, '--model-dir'), device: argOf(command, '--device'), dtype: argOf(command, '--dtype') }).toEqual({
      engine: 'vibevoice',
      dir: '/models/tts/VibeVoice-Realtime-0.5B',
      device: 'cuda',
      dtype: 'bfloat16',
    });
    expect(argOf(command, '--max-streams')).toBe('16');
    expect(argOf(command, '--host')).toBe('127.0.0.1');
    expect(argOf(command, '--port')).toBe('8000');
    expect(config.engines.tts).toMatchObject({ engine: 'vibevoice', maxStreams: 16 });
  });

  it('the test profile: the espeak-ng double on CPU in float32; S2S_TTS_ENGINE=vibevoice with a model folder is the CPU profile of the real engine', () => {
    const test = engines({ S2S_PROFILE: 'test' }, NO_GPU).config.engines.tts;
    expect([argOf(test.sidecar.command, '--engine'), argOf(test.sidecar.command, '--device'), argOf(test.sidecar.command, '--dtype')]).toEqual(['espeak-double', 'cpu', 'float32']);
    expect(test.maxStreams).toBe(4);
    const cpu = engines({ S2S_PROFILE: 'test', S2S_TTS_ENGINE: 'vibevoice', S2S_TTS_MODEL_DIR: '/tiny/model', S2S_TTS_MAX_STREAMS: '6' }, NO_GPU).config.engines.tts;
    expect([argOf(cpu.sidecar.command, '--engine'), argOf(cpu.sidecar.command, '--model-dir'), argOf(cpu.sidecar.command, '--max-streams')]).toEqual(['vibevoice', '/tiny/model', '6']);
  });

  it('S2S_TTS_PYTHON chooses the Python; a bad engine name is a clear config error', () => {
    expect(engines({ S2S_TTS_PYTHON: '/opt/py/bin/python3' }, GPU_IMAGE).config.engines.tts.sidecar.command[0]).toBe('/opt/py/bin/python3');
    expect(() => engines({ S2S_TTS_ENGINE: 'vibevoice-demo' }, NO_GPU)).toThrow(/S2S_TTS_ENGINE/);
    expect(() => engines({ S2S_TTS_MAX_STREAMS: '0' }, NO_GPU)).toThrow(/S2S_TTS_MAX_STREAMS/);
  });
});
