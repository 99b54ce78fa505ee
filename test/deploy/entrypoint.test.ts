/**
 * docker/entrypoint.sh run for real, with doubles for the commands that need root or the image
 * (`id`, `stat`, `chown`, `setpriv`, put first on PATH): as root it creates the models folder, gives
 * it to `worker` once, and runs the command as `worker` with the environment passed through; as any
 * other user it runs the command unchanged.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';

let dir: string;
let bin: string;
let calls: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 's2s-entrypoint-'));
  bin = join(dir, 'bin');
  calls = join(dir, 'calls.log');
  const doubles: Record<string, string> = {
    id: 'echo "$FAKE_UID"',
    stat: 'echo "$FAKE_OWNER"',
    chown: `echo "chown $*" >> "${calls}"`,
    // Records how it was asked to drop privileges, then runs the command as given.
    setpriv: `args=""; while [ "$1" != "--" ]; do args="$args $1"; shift; done; shift; echo "setpriv$args HOME=$HOME" >> "${calls}"; exec "$@"`,
  };
  await mkdir(bin);
  for (const [name, body] of Object.entries(doubles)) {
    await writeFile(join(bin, name), `#!/bin/sh\n${body}\n`);
    await chmod(join(bin, name), 0o755);
  }
});

function run(env: Record<string, string>) {
  const result = spawnSync('sh', ['docker/entrypoint.sh', 'sh', '-c', 'echo "ran with S2S_MARK=$S2S_MARK HOME=$HOME"'], {
    env: { PATH: `${bin}:${process.env['PATH']}`, HOME: '/root', S2S_MARK: 'kept', ...env },
    encoding: 'utf8',
  });
  const log = existsSync(calls) ? readFile(calls, 'utf8') : Promise.resolve('');
  return { code: result.status, stdout: result.stdout, stderr: result.stderr, log };
}

describe('docker/entrypoint.sh', () => {
  it('as root: creates the models folder, gives it to worker, runs the command as worker with the environment', async () => {
    const models = join(dir, 'volume', 's2s-models');
    const result = run({ FAKE_UID: '0', FAKE_OWNER: 'root', S2S_MODELS_DIR: models });
    expect(result.code, result.stderr).toBe(0);
    expect(existsSync(models)).toBe(true);
    expect(await result.log).toBe(`chown -R worker:worker ${models}\nsetpriv --reuid=worker --regid=worker --init-groups HOME=/home/worker\n`);
    expect(result.stdout).toBe('ran with S2S_MARK=kept HOME=/home/worker\n');
  });

  it('as root, a folder worker owns already is not walked again', async () => {
    const result = run({ FAKE_UID: '0', FAKE_OWNER: 'worker', S2S_MODELS_DIR: join(dir, 'models') });
    expect(result.code, result.stderr).toBe(0);
    expect(await result.log).toBe('setpriv --reuid=worker --regid=worker --init-groups HOME=/home/worker\n');
  });

  it('as another user: runs the command unchanged', async () => {
    const models = join(dir, 'models');
    const result = run({ FAKE_UID: '1000', FAKE_OWNER: 'root', S2S_MODELS_DIR: models });
    expect(result.code, result.stderr).toBe(0);
    expect(await result.log).toBe('');
    expect(existsSync(models)).toBe(false);
    expect(result.stdout).toBe('ran with S2S_MARK=kept HOME=/root\n');
  });

  it('passes the command exit code through', () => {
    const result = spawnSync('sh', ['docker/entrypoint.sh', 'sh', '-c', 'exit 7'], { env: { PATH: `${bin}:${process.env['PATH']}`, FAKE_UID: '1000' } });
    expect(result.status).toBe(7);
  });
});
