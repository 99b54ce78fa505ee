/**
 * Issue 21 item 16: a session job nobody joins holds its worker (a whole GPU) until the connect
 * timeout, while other jobs wait. The default is 30 s: a client that asked for a session is waiting
 * for the job's first chunk and connects one round trip after it. docs/configuration.md says the same.
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { readPipelineConfig } from '../../handler/pipeline-config.js';

const NO_GPU = { nvidiaGpu: false, sherpaCuda: false };

describe('S2S_SESSION_CONNECT_TIMEOUT_MS', () => {
  it('defaults to 30 s, and docs/configuration.md documents that default', async () => {
    expect(readPipelineConfig({ S2S_MODELS_DIR: '/models' }, NO_GPU).sessions.connectTimeoutMs).toBe(30_000);
    const table = await readFile('docs/configuration.md', 'utf8');
    const row = table.split('\n').find((line) => line.startsWith('| `S2S_SESSION_CONNECT_TIMEOUT_MS`'));
    expect(row, 'a row of its own in the configuration table').toBeDefined();
    expect(row!.split('|')[2]!.trim()).toBe('`30000`');
    // The session chunk shown in the sessions guide says when the token expires.
    expect(await readFile('docs/sessions.md', 'utf8')).toContain('"expires_in_s":30,');
  });

  it('can still be set longer or shorter', () => {
    expect(readPipelineConfig({ S2S_MODELS_DIR: '/models', S2S_SESSION_CONNECT_TIMEOUT_MS: '120000' }, NO_GPU).sessions.connectTimeoutMs).toBe(120_000);
  });
});
