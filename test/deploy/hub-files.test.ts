/**
 * `.runpod/hub.json` and `.runpod/tests.json` validated against a zod schema of the RunPod Hub
 * fields, and kept in step with the worker (its env variables and test_input.json).
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';

const envInput = z.strictObject({
  name: z.string().min(1),
  type: z.enum(['string', 'number', 'boolean']),
  description: z.string().min(1),
  default: z.union([z.string(), z.number(), z.boolean()]).optional(),
  options: z.array(z.strictObject({ label: z.string(), value: z.union([z.string(), z.number()]) })).optional(),
  advanced: z.boolean().optional(),
});

const hubSchema = z.strictObject({
  title: z.string().min(1),
  description: z.string().min(1),
  type: z.literal('serverless'),
  category: z.enum(['audio', 'embedding', 'language', 'image', 'video', 'other']),
  iconUrl: z.string().url(),
  config: z.strictObject({
    runsOn: z.enum(['GPU', 'CPU']),
    containerDiskInGb: z.number().int().positive(),
    gpuCount: z.number().int().positive(),
    gpuIds: z.string().regex(/^[A-Z0-9_]+(,[A-Z0-9_]+)*$/),
    allowedCudaVersions: z.array(z.string().regex(/^\d+\.\d+$/)).min(1),
    presets: z.array(z.strictObject({ name: z.string().min(1), defaults: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])) })),
    env: z.array(z.union([z.strictObject({ key: z.string().min(1), value: z.string() }), z.strictObject({ key: z.string().min(1), input: envInput })])),
  }),
});

const testsSchema = z.strictObject({
  tests: z.array(z.strictObject({ name: z.string().min(1), input: z.record(z.string(), z.unknown()), timeout: z.number().int().positive() })).min(1),
  config: z.strictObject({
    gpuTypeId: z.string().min(1),
    gpuCount: z.number().int().positive(),
    env: z.array(z.strictObject({ key: z.string(), value: z.string() })).optional(),
    allowedCudaVersions: z.array(z.string().regex(/^\d+\.\d+$/)).min(1),
  }),
});

const hub = hubSchema.parse(JSON.parse(await readFile('.runpod/hub.json', 'utf8')));
const tests = testsSchema.parse(JSON.parse(await readFile('.runpod/tests.json', 'utf8')));

describe('RunPod Hub files', () => {
  it('hub.json: audio category, one 24 GB Ada/Ampere GPU (L4 class), a container disk, model choices as inputs', () => {
    expect(hub.category).toBe('audio');
    expect(hub.config.gpuIds.split(',')).toContain('ADA_24');
    expect(hub.config.containerDiskInGb).toBeGreaterThanOrEqual(20);
    const keys = hub.config.env.map((e) => e.key);
    expect(keys).toEqual(expect.arrayContaining(['S2S_ASR_PRECISION', 'S2S_LLM_QUANT', 'S2S_VOICE', 'ASR_MODEL', 'LLM_MODEL', 'MODEL_PATH']));
  });

  it('every env key and preset value is one the worker reads and accepts', async () => {
    // Keys of the worker's own environment schemas, not words found somewhere in the source.
    const { envSchema: pipelineEnv, readPipelineConfig } = await import('../../handler/pipeline-config.js');
    const { envSchema: workerEnv } = await import('../../handler/config.js');
    const read = new Set([...Object.keys(pipelineEnv.shape), ...Object.keys(workerEnv.shape)]);
    for (const { key } of hub.config.env) expect(read.has(key), key).toBe(true);
    for (const preset of hub.config.presets) {
      const env = Object.fromEntries(Object.entries(preset.defaults).map(([k, v]) => [k, String(v)]));
      expect(() => readPipelineConfig(env), preset.name).not.toThrow();
    }
  });

  it('every value the hub offers (fixed values, input defaults, options) is one the worker accepts, of the declared type', async () => {
    const { envSchema: pipelineEnv, readPipelineConfig } = await import('../../handler/pipeline-config.js');
    const { readWorkerConfig } = await import('../../handler/config.js');
    // RunPod sets each as a string; the worker reads it the way it reads its own environment.
    const accept = (key: string, value: string | number | boolean) => {
      const env = { [key]: String(value) };
      if (key in pipelineEnv.shape) readPipelineConfig(env);
      else readWorkerConfig(env);
    };
    let checked = 0;
    for (const entry of hub.config.env) {
      const values = 'value' in entry ? [entry.value] : [...(entry.input.default === undefined ? [] : [entry.input.default]), ...(entry.input.options ?? []).map((o) => o.value)];
      for (const value of values) {
        expect(() => accept(entry.key, value), `${entry.key}=${value}`).not.toThrow();
        if ('input' in entry) expect(typeof value, `${entry.key}=${value}`).toBe(entry.input.type);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(hub.config.env.length);
  });

  it('tests.json runs the same spoken turn as test_input.json', async () => {
    const testInput = JSON.parse(await readFile('test_input.json', 'utf8')) as { input: unknown };
    expect(tests.tests[0]!.input).toEqual(testInput.input);
    expect(tests.config.gpuTypeId).toBe('NVIDIA L4');
  });
});
