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
  const common = ['size', 'device', 'dtype', 'steps', 'cfg'];
  const setup = rows.find((r) => r['bench'] === 'tts_setup');
  console.log(`\nTTS engine, python -m s2s_tts.bench ${args.slice(2).join(' ')}: ${common.map((k) => `${k} ${String(setup?.[k] ?? rows[0]?.[k] ?? '?')}`).join(', ')}\n`);
  // One table per kind of figure (tts_step, tts_first_audio, tts_streamed_vs_clause, ...), as the engine names them.
  for (const kind of [...new Set(rows.map((r) => String(r['bench'])))]) {
    console.log(`${kind}:\n${markdownTable(rows.filter((r) => r['bench'] === kind).map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => k !== 'bench' && !common.includes(k)))))}\n`);
  }
  // The step times by stream count also go into the summary table (median of the timed steps).
  return rows.flatMap((row) =>
    row['bench'] === 'tts_step' && typeof row['median_ms'] === 'number'
      ? [{ name: `tts engine step, ${String(row['streams'])} stream(s) (x${String(row['ratio_to_1'])} of one) [${args.slice(2).join(' ')}]`, unit: 'ms', samples: Number(row['frames'] ?? 1), median: row['median_ms'], p90: Number.NaN, p99: Number.NaN }]
      : [],
  );
}

function markdownTable(rows: EngineRow[]): string {
  const keys = [...new Set(rows.flatMap((row) => Object.keys(row)))];
  const cell = (v: unknown) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 3)) : v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v));
  return [`| ${keys.join(' | ')} |`, `|${keys.map(() => '---').join('|')}|`, ...rows.map((row) => `| ${keys.map((k) => cell(row[k])).join(' | ')} |`)].join('\n');
}
