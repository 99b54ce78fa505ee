/**
 * The worker's start-up with the turn model: a corrupt file stops it, naming the file (S2S_TURN_MODEL=on,
 * the default); with S2S_TURN_MODEL=optional a missing file is a warning and turns end on the
 * transcript cue alone. The test profile: the tiny generated model, the real code path.
 */
import { rm, writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { createS2sHandler } from '../../handler/s2s-handler.js';
import { Logger } from '../../src/log/logger.js';
import { modelFiles } from '../../src/models/registry.js';
import { testProfileEnv } from '../helpers/test-profile.js';

describe('start-up with the turn model', () => {
  it('a corrupt model file stops the start with the file named', async () => {
    const env = await testProfileEnv();
    const path = modelFiles('test', env['S2S_MODELS_DIR']!).turn.model;
    await writeFile(path, 'not an onnx model');
    const log = new Logger({ level: 'ERROR', jsonLines: true, write: () => undefined });
    await expect(createS2sHandler({ log, env })).rejects.toThrow(new RegExp(`^vad failed to load: turn model at ${path} could not be loaded`));
  }, 60_000);

  it('an optional model that is missing is a warning, and the worker starts without it', async () => {
    const env = await testProfileEnv({ S2S_TURN_MODEL: 'optional' });
    const path = modelFiles('test', env['S2S_MODELS_DIR']!).turn.model;
    await rm(path);
    const lines: string[] = [];
    const s2s = await createS2sHandler({ log: new Logger({ level: 'DEBUG', jsonLines: true, write: (line) => lines.push(line) }), env });
    try {
      expect(s2s.engines.vad.turnModel).toBeNull();
      const warning = lines.map((l) => JSON.parse(l) as { level: string; message: string }).find((l) => l.message.includes('turn model'));
      expect(warning).toMatchObject({ level: 'WARN' });
      expect(warning!.message).toContain(`turn model not found at ${path}`);
      expect(warning!.message).toContain('transcript cue alone');
    } finally {
      await s2s.dispose();
    }
  }, 60_000);
});
