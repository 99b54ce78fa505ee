/** S2S_MAX_CONVERSATIONS is the one limit on conversations per worker; the settings it replaced are refused by name. */
import { describe, expect, it } from 'vitest';
import { readWorkerConfig } from '../../handler/config.js';
import type { Machine } from '../../handler/machine.js';
import { readPipelineConfig } from '../../handler/pipeline-config.js';
import { ConfigError } from '../../src/errors.js';

const NO_GPU: Machine = { nvidiaGpu: false, sherpaCuda: false };

describe('S2S_MAX_CONVERSATIONS', () => {
  it('defaults to 8 and sizes the LLM sequences and the scheduler from one value', () => {
    const config = readPipelineConfig({ S2S_MODELS_DIR: '/models' }, NO_GPU);
    expect(config.capacity.maxConversations).toBe(8);
    expect(config.engines.llm.maxConversations).toBe(8);
    // Production asks for CUDA: two Whisper decodes at once; on the CPU one. The TTS lane has the server's streams.
    expect(config.capacity.scheduler).toEqual({ asrSlots: 2, llmSlots: 8, ttsSlots: config.engines.tts.maxStreams, preemptionBackoff: true });
    expect(config.engines.tts.maxStreams).toBe(16);
    const cpu = readPipelineConfig({ S2S_MODELS_DIR: '/models', S2S_DEVICE: 'cpu' }, NO_GPU);
    expect(cpu.capacity.scheduler.asrSlots).toBe(1);
    const six = readPipelineConfig({ S2S_MODELS_DIR: '/models', S2S_MAX_CONVERSATIONS: '6', S2S_TTS_MAX_STREAMS: '16' }, NO_GPU);
    expect([six.capacity.maxConversations, six.engines.llm.maxConversations, six.capacity.scheduler.llmSlots, six.capacity.scheduler.ttsSlots]).toEqual([6, 6, 6, 16]);
  });

  it('refuses the variables it replaced, naming the new one', () => {
    expect(() => readWorkerConfig({ S2S_CONCURRENCY: '2' })).toThrow(ConfigError);
    expect(() => readWorkerConfig({ S2S_CONCURRENCY: '2' })).toThrow(/S2S_CONCURRENCY was replaced by S2S_MAX_CONVERSATIONS/);
    expect(() => readPipelineConfig({ S2S_MODELS_DIR: '/models', S2S_LLM_CONVERSATIONS: '4' }, NO_GPU)).toThrow(/S2S_LLM_CONVERSATIONS was replaced by S2S_MAX_CONVERSATIONS/);
    expect(() => readPipelineConfig({ S2S_MODELS_DIR: '/models', S2S_MAX_CONVERSATIONS: '0' }, NO_GPU)).toThrow(/S2S_MAX_CONVERSATIONS/);
  });
});
