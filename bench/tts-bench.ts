/**
 * `npm run bench -- tts`: our TTS engine (tts-server/).
 *
 * The engine: runs its Python bench (`python -m s2s_tts.bench`, tts-server/) and prints its table:
 *    time per batched step at 1, 2, 4 and 8 streams and the ratio to one stream (the figure that
 *    carries over to a GPU), first text window -> first audio, and first audio of streamed text against
 *    one request per clause on the same engine. Arguments after `--tts-` go to it (`--tts-size=tiny`,
 *    `--tts-device=cuda`, `--tts-dtype=bfloat16`); default: the real architecture, fp32, on CPU.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { BenchResult } from './stats.js';

export async function benchTts(): Promise<BenchResult[]> {
  return benchEngine();
}

/** One JSON object per line from `python -m s2s_tts.bench`; each becomes a row of the printed table. */
type EngineRow = Record<string, unknown>;

async function benchEngine(): Promise<BenchResult[]> {
  const checkoutPython = resolve('tts-server', '.venv', 'bin', 'python');
  const python = existsSync(checkoutPython) ? checkoutPython : 'python3';
  const args = ['-m', 's2s_tts.bench', '--size', 'real', '--dtype', 'float32', '--device', 'cpu'];
  for (const arg of process.argv.slice(2)) {
    const match = /^--tts-([a-z-]+)=(.+)$/.exec(arg);
    if (!match) continue;
    const at = args.indexOf(`--${match[1]}`);
    if (at >= 0) args[at + 1] = match[2]!;
    else args.push(`--${match[1]}`, match[2]!);
  }
  process.stderr.write(`bench: tts engine: ${python} ${args.join(' ')}\n`);
  const rows: EngineRow[] = [];
  const code = await new Promise<number | null>((done, fail) => {
    const child = spawn(python, args, { env: { ...process.env, PYTHONPATH: resolve('tts-server', 'src') }, stdio: ['ignore', 'pipe', 'inherit'] });
    let buffered = '';
    child.stdout.on('data', (data: Buffer) => {
      buffered += data.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines.filter((l) => l.trim())) {
        try {
          rows.push(JSON.parse(line) as EngineRow);
        } catch {
          process.stderr.write(`${line}\n`);
        }
      }
    });
    child.once('error', fail);
    child.once('exit', done);
  });
  if (code !== 0) throw new Error(`the TTS engine bench (${python} ${args.join(' ')}) exited with code ${code}`);
  console.log(`\nTTS engine (${args.slice(2).join(' ')}), from python -m s2s_tts.bench:\n`);
  console.log(markdownTable(rows));
  // Rows that carry a statistic of their own also go into the summary table.
  return rows.flatMap((row) =>
    typeof row['name'] === 'string' && typeof row['median'] === 'number'
      ? [{ name: `tts engine ${row['name']}`, unit: String(row['unit'] ?? 'ms'), samples: Number(row['n'] ?? row['samples'] ?? 1), median: row['median'], p90: Number(row['p90'] ?? row['median']), p99: Number(row['p99'] ?? row['median']) }]
      : [],
  );
}

function markdownTable(rows: EngineRow[]): string {
  const keys = [...new Set(rows.flatMap((row) => Object.keys(row)))];
  const cell = (v: unknown) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 3)) : v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v));
  return [`| ${keys.join(' | ')} |`, `|${keys.map(() => '---').join('|')}|`, ...rows.map((row) => `| ${keys.map((k) => cell(row[k])).join(' | ')} |`)].join('\n');
}
