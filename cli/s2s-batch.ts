/**
 * s2s-batch: scripted speech-to-speech runs against a RunPod endpoint (or the local API).
 *
 *   s2s-batch --endpoint <id> questions/            every WAV in a folder, one turn each
 *   s2s-batch --local a.wav b.wav                   the local API (npm start) at http://127.0.0.1:8005/v2
 *   s2s-batch --local --base-url URL a.wav          the local API elsewhere (`npm start -- --rp_api_port 8105`)
 *   s2s-batch --endpoint <id> script.json           multi-turn conversations:
 *       {"conversations": [{"name": "trip", "turns": ["q1.wav", "q2.wav"], "system_prompt": "..."}]}
 *
 * For every turn it writes the reply as WAV (24 kHz), the transcript and the response text, and
 * at the end a summary (per turn, and p50/p90 of first_audio_ms and each stage) to the terminal
 * and to summary.json. The API key comes from RUNPOD_API_KEY.
 */
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import runpodSdk from 'runpod-sdk';
import { encodeWav } from '../src/audio/wav.js';

interface Conversation {
  name: string;
  turns: string[];
  system_prompt?: string;
}

interface TurnRow {
  conversation: string;
  turn: number;
  transcript: string;
  response: string;
  metrics: Record<string, number>;
}

type Event = { type: string; turn?: number; [key: string]: unknown };

const STAGES = ['first_audio_ms', 'endpoint_ms', 'asr_ms', 'llm_ttft_ms', 'llm_first_clause_ms', 'tts_ttfb_ms', 'overhead_ms'];

const usage = [
  'usage: s2s-batch (--endpoint ID | --local) [--base-url URL] [--out DIR] [--concurrency N] [--voice NAME] [--system-prompt TEXT] INPUT...',
  '  --local         the local API (npm start), at http://127.0.0.1:8005/v2 unless --base-url says otherwise',
  '  --base-url URL  the API base, ending in /v2 (default https://api.runpod.ai/v2, or the local one with --local)',
  '  INPUT           WAV files, folders of WAVs, or a JSON script of conversations',
].join('\n');

/** A URL where an input was expected: almost always a value given to --local. */
const URL_LIKE = /^[a-z][a-z0-9+.-]*:\/\//i;

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        endpoint: { type: 'string' },
        local: { type: 'boolean', default: false },
        'base-url': { type: 'string' },
        out: { type: 'string', default: 's2s-batch-out' },
        concurrency: { type: 'string', default: '1' },
        voice: { type: 'string' },
        'system-prompt': { type: 'string' },
        help: { type: 'boolean', default: false },
      },
    });
  } catch (error) {
    console.error(`s2s-batch: ${(error as Error).message}\n${usage}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help || positionals.length === 0 || (!values.endpoint && !values.local)) {
    console.error(usage);
    return values.help ? 0 : 2;
  }
  const url = positionals.find((p) => URL_LIKE.test(p));
  if (url) {
    console.error(`s2s-batch: ${url} is not an input: --local takes no value; give the API's address as --base-url ${url}`);
    return 2;
  }
  for (const input of positionals) {
    if (!(await exists(input))) {
      console.error(`s2s-batch: no such file or folder: ${input}`);
      return 2;
    }
  }
  const apiKey = process.env['RUNPOD_API_KEY'] ?? (values.local ? 'local' : undefined);
  if (!apiKey) {
    console.error('s2s-batch: set RUNPOD_API_KEY to call a RunPod endpoint');
    return 2;
  }
  const baseUrl = values['base-url'] ?? (values.local ? 'http://127.0.0.1:8005/v2' : 'https://api.runpod.ai/v2');
  const endpoint = runpodSdk(apiKey, { baseUrl }).endpoint(values.endpoint ?? 'local')!;
  const conversations = await collectConversations(positionals);
  if (conversations.length === 0) {
    console.error('s2s-batch: no WAV files found in the inputs');
    return 2;
  }
  const outDir = resolve(values.out);
  const concurrency = Math.max(1, Number(values.concurrency) || 1);
  const totalTurns = conversations.reduce((n, c) => n + c.turns.length, 0);
  const progress = new Progress(totalTurns);
  const rows: TurnRow[] = [];
  const failures: { conversation: string; error: string }[] = [];
  const queue = [...conversations];

  const runOne = async (conversation: Conversation) => {
    const turns = await Promise.all(conversation.turns.map(async (path) => ({ audio: (await readFile(path)).toString('base64') })));
    const input = {
      ...(turns.length === 1 ? turns[0] : { turns }),
      ...(values.voice ? { voice: values.voice } : {}),
      ...((conversation.system_prompt ?? values['system-prompt']) ? { system_prompt: conversation.system_prompt ?? values['system-prompt'] } : {}),
    };
    const { id } = (await endpoint.run({ input })) as { id: string };
    const events: Event[] = [];
    for await (const chunk of endpoint.stream(id) as AsyncIterable<{ output: Event }>) {
      events.push(chunk.output);
      if (chunk.output.type === 'metrics') progress.tick(conversation.name);
    }
    const final = (await endpoint.status(id)) as { status: string; error?: string };
    if (final.status !== 'COMPLETED') throw new Error(`job ${id} ${final.status}: ${final.error ?? 'no error given'}`);
    rows.push(...(await writeTurns(conversation, events, outDir)));
  };
  await Promise.all(
    Array.from({ length: Math.min(concurrency, queue.length) }, async () => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        try {
          await runOne(next);
        } catch (error) {
          failures.push({ conversation: next.name, error: (error as Error).message });
          progress.tick(next.name, next.turns.length);
        }
      }
    }),
  );
  progress.done();

  rows.sort((a, b) => a.conversation.localeCompare(b.conversation) || a.turn - b.turn);
  const summary = summarize(rows);
  await mkdir(outDir, { recursive: true });
  await writeFile(join(outDir, 'summary.json'), JSON.stringify({ turns: rows, percentiles: summary, failures }, null, 2) + '\n');
  printSummary(rows, summary, failures);
  console.log(`\noutputs in ${outDir}`);
  return failures.length > 0 ? 1 : 0;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function collectConversations(inputs: string[]): Promise<Conversation[]> {
  const conversations: Conversation[] = [];
  for (const input of inputs) {
    const info = await stat(input);
    if (info.isDirectory()) {
      const names = (await readdir(input)).filter((n) => extname(n).toLowerCase() === '.wav').sort();
      for (const name of names) conversations.push({ name: basename(name, extname(name)), turns: [join(input, name)] });
    } else if (extname(input).toLowerCase() === '.json') {
      const script = JSON.parse(await readFile(input, 'utf8')) as { conversations?: Conversation[] };
      for (const [i, c] of (script.conversations ?? []).entries()) {
        conversations.push({ name: c.name ?? `conversation-${i}`, turns: c.turns.map((t) => resolve(dirname(input), t)), system_prompt: c.system_prompt });
      }
    } else {
      conversations.push({ name: basename(input, extname(input)), turns: [input] });
    }
  }
  return conversations;
}

async function writeTurns(conversation: Conversation, events: Event[], outDir: string): Promise<TurnRow[]> {
  const dir = join(outDir, conversation.name);
  await mkdir(dir, { recursive: true });
  const rows: TurnRow[] = [];
  for (let turn = 0; turn < conversation.turns.length; turn++) {
    const mine = events.filter((e) => e.turn === turn);
    const transcript = (mine.find((e) => e.type === 'transcript')?.['text'] as string | undefined) ?? '';
    const response = mine.filter((e) => e.type === 'text').map((e) => e['delta'] as string).join('');
    const audio = Buffer.concat(mine.filter((e) => e.type === 'audio').map((e) => Buffer.from(e['data'] as string, 'base64')));
    const metricsEvent = mine.find((e) => e.type === 'metrics') ?? {};
    const metrics = Object.fromEntries(Object.entries(metricsEvent).filter(([, v]) => typeof v === 'number')) as Record<string, number>;
    await writeFile(join(dir, `turn-${turn}.wav`), encodeWav(new Int16Array(audio.buffer, audio.byteOffset, audio.byteLength >> 1), 24_000));
    await writeFile(join(dir, `turn-${turn}.transcript.txt`), transcript + '\n');
    await writeFile(join(dir, `turn-${turn}.response.txt`), response + '\n');
    rows.push({ conversation: conversation.name, turn, transcript, response, metrics });
  }
  return rows;
}

function percentile(values: number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

function summarize(rows: TurnRow[]): Record<string, { p50: number | null; p90: number | null }> {
  const answered = rows.filter((r) => (r.metrics['first_audio_ms'] ?? 0) > 0);
  return Object.fromEntries(
    STAGES.map((stage) => {
      const values = answered.map((r) => r.metrics[stage]).filter((v): v is number => typeof v === 'number');
      return [stage, { p50: percentile(values, 0.5), p90: percentile(values, 0.9) }];
    }),
  );
}

function printSummary(rows: TurnRow[], summary: ReturnType<typeof summarize>, failures: { conversation: string; error: string }[]): void {
  const fmt = (v: number | null | undefined) => (v === null || v === undefined ? '-' : v.toFixed(0));
  console.log('\nconversation  turn  first_audio_ms  asr_ms  llm_first_clause_ms  tts_ttfb_ms  transcript');
  for (const r of rows) {
    console.log(
      `${r.conversation.padEnd(12)}  ${String(r.turn).padEnd(4)}  ${fmt(r.metrics['first_audio_ms']).padEnd(14)}  ${fmt(r.metrics['asr_ms']).padEnd(6)}  ${fmt(r.metrics['llm_first_clause_ms']).padEnd(19)}  ${fmt(r.metrics['tts_ttfb_ms']).padEnd(11)}  ${r.transcript}`,
    );
  }
  console.log('\nstage                p50      p90');
  for (const [stage, { p50, p90 }] of Object.entries(summary)) console.log(`${stage.padEnd(20)} ${fmt(p50).padEnd(8)} ${fmt(p90)}`);
  for (const f of failures) console.log(`FAILED ${f.conversation}: ${f.error}`);
}

/** A one-line progress bar on stderr (only when it is a terminal; a plain count otherwise). */
class Progress {
  #done = 0;
  constructor(readonly total: number) {}
  tick(label: string, count = 1): void {
    this.#done += count;
    const width = 30;
    const filled = Math.round((this.#done / this.total) * width);
    const line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${this.#done}/${this.total} turns  ${label}`;
    if (process.stderr.isTTY) process.stderr.write(`\r${line.padEnd(80)}`);
    else process.stderr.write(`${line}\n`);
  }
  done(): void {
    if (process.stderr.isTTY) process.stderr.write('\n');
  }
}

// Anything else that goes wrong (a script that is not JSON, an unreadable file) is one line too.
process.exit(
  await main().catch((error: unknown) => {
    console.error(`s2s-batch: ${(error as Error).message ?? String(error)}`);
    return 1;
  }),
);
