/**
 * Issue 21 item 14: s2s-batch's command line. Its usage line is true (`--local` takes no value,
 * `--base-url URL` is documented), and a value given to `--local`, or an input that does not
 * exist, is one clear line and exit code 2, never an unhandled ENOENT with a stack trace.
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';

function batch(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['dist/s2s-batch.mjs', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code: code ?? -1, stdout, stderr })));
}

describe('s2s-batch command line', () => {
  it('--help: the usage line shows --local without a value and documents --base-url', async () => {
    const { code, stderr } = await batch(['--help']);
    expect(code).toBe(0);
    expect(stderr).toContain('--local');
    expect(stderr).not.toMatch(/--local \[/);
    expect(stderr).toMatch(/--base-url URL/);
  });

  it('a URL after --local is refused with one line saying to use --base-url (no ENOENT, no stack)', async () => {
    const { code, stderr } = await batch(['--local', 'http://127.0.0.1:8105/v2', 'questions/']);
    expect(code).toBe(2);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/--local takes no value.*--base-url http:\/\/127\.0\.0\.1:8105\/v2/);
    expect(stderr).not.toMatch(/ENOENT|\n\s+at /);
  });

  it('an input that does not exist is named in one line, before any job is sent', async () => {
    const { code, stderr } = await batch(['--local', '--base-url', 'http://127.0.0.1:1/v2', 'no-such-folder/']);
    expect(code).toBe(2);
    expect(stderr.trim()).toBe('s2s-batch: no such file or folder: no-such-folder/');
  });

  it('an unknown option is one line with the usage, not a stack trace', async () => {
    const { code, stderr } = await batch(['--locale', 'x.wav']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/^s2s-batch: Unknown option '--locale'/);
    expect(stderr).not.toMatch(/\n\s+at /);
  });
});
