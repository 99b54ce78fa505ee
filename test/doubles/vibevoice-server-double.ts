/**
 * A stand-in for VibeVoice's realtime demo server (microsoft/VibeVoice demo/web/app.py) that
 * speaks the same protocol on its own port, with real speech from espeak-ng instead of the model:
 *
 *   GET /config               {"voices": [...], "default_voice": "en-Carter_man"}
 *   WS  /stream?text=&cfg=&steps=&voice=
 *     binary frames: PCM16 LE mono 24 kHz, 6400 bytes (3200 samples) each
 *     text frames:   {"type":"log","event":...,"data":{...},"timestamp":...}
 *                    backend_request_received, model_progress, backend_first_chunk_sent,
 *                    generation_error, backend_error, client_disconnected, backend_stream_complete
 *     one generation at a time: another client gets backend_busy and close code 1013
 *     (--max-streams N: N at once, a stand-in for a TTS engine that batches streams)
 *     closing the socket stops generation; the server closes it when done
 *
 * Test hooks (this is a test double): text containing "[[fail]]" makes generation fail;
 * "[[crash]]" ends the process after the first frame. Flags: --port, --host, --frame-ms (pause
 * between frames, default 20), --first-chunk-ms (extra delay before the first frame), --startup-ms
 * (delay before listening), --stamp (write the send time, epoch ms as float64, into each frame's
 * first 8 bytes, for benchmarks), --pid-file (write the process id there, for fault tests).
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { WebSocketServer, type WebSocket } from 'ws';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '8000' },
    host: { type: 'string', default: '127.0.0.1' },
    'frame-ms': { type: 'string', default: '20' },
    'first-chunk-ms': { type: 'string', default: '0' },
    'startup-ms': { type: 'string', default: '0' },
    stamp: { type: 'boolean', default: false },
    'pid-file': { type: 'string' },
    'max-streams': { type: 'string', default: '1' },
  },
});
// Fault tests kill this process by the id it writes here.
if (values['pid-file']) writeFileSync(values['pid-file'], String(process.pid));

const VOICES = ['en-Carter_man', 'en-Davis_man', 'en-Emma_woman', 'en-Frank_man', 'en-Grace_woman', 'en-Mike_man', 'in-Samuel_man'];
const DEFAULT_VOICE = 'en-Carter_man';
/** espeak-ng voice variants, so each preset sounds a little different. */
const ESPEAK_VARIANT: Record<string, string> = { 'en-Emma_woman': 'en+f3', 'en-Grace_woman': 'en+f4', 'en-Davis_man': 'en+m3', 'en-Frank_man': 'en+m5', 'en-Mike_man': 'en+m7' };
const FRAME_BYTES = 6400;
const frameMs = Number(values['frame-ms']);
const firstChunkMs = Number(values['first-chunk-ms']);

const timestamp = () => new Date().toISOString().replace('T', ' ').slice(0, 23);
const log = (ws: WebSocket, event: string, data: Record<string, unknown> = {}) => {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: 'log', event, data, timestamp: timestamp() }));
};

function run(command: string, args: string[], input?: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'ignore'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`${command} exited ${code}`))));
    child.stdin.end(input);
  });
}

/** espeak-ng speech as raw PCM16 at 24 kHz. */
async function speak(text: string, voice: string): Promise<Buffer> {
  const wav = await run('espeak-ng', ['--stdout', '-v', ESPEAK_VARIANT[voice] ?? 'en', text]);
  return run('sox', ['-t', 'wav', '-', '-t', 'raw', '-e', 'signed-integer', '-b', '16', '-c', '1', '-r', '24000', '-', 'gain', '-n', '-3'], wav);
}

const maxStreams = Number(values['max-streams']);
let generating = 0;

const http = createServer((req, res) => {
  if (req.url === '/config' && req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ voices: VOICES, default_voice: DEFAULT_VOICE }));
    return;
  }
  res.writeHead(404, { 'content-type': 'application/json' }).end('{"detail":"Not Found"}');
});

const wss = new WebSocketServer({ noServer: true });
http.on('upgrade', (req, socket, head) => {
  if (!req.url?.startsWith('/stream')) {
    socket.destroy();
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => void handle(ws, new URL(req.url!, 'http://x').searchParams));
});

async function handle(ws: WebSocket, query: URLSearchParams): Promise<void> {
  if (generating >= maxStreams) {
    log(ws, 'backend_busy', { message: 'Please wait for the other requests to complete.' });
    ws.close(1013, 'Service busy');
    return;
  }
  generating++;
  let disconnected = false;
  ws.on('close', () => (disconnected = true));
  const text = query.get('text') ?? '';
  const voiceParam = query.get('voice');
  const voice = voiceParam && VOICES.includes(voiceParam) ? voiceParam : DEFAULT_VOICE;
  try {
    // On stdout too, which the sidecar manager logs: tests see exactly what text was asked for.
    console.log(`request_received ${JSON.stringify(text)}`);
    log(ws, 'backend_request_received', { text_length: text.length, cfg_scale: Number(query.get('cfg') ?? 1.5), inference_steps: query.get('steps'), voice: voiceParam });
    if (text.includes('[[fail]]')) {
      log(ws, 'generation_error', { message: 'CUDA out of memory (simulated)' });
      log(ws, 'backend_error', { message: 'CUDA out of memory (simulated)' });
      return;
    }
    if (!text.trim()) return;
    const pcm = await speak(text.replaceAll('[[crash]]', ''), voice);
    if (firstChunkMs) await new Promise((resolve) => setTimeout(resolve, firstChunkMs));
    let sent = 0;
    for (let at = 0; at < pcm.length && !disconnected; at += FRAME_BYTES) {
      const frame = pcm.subarray(at, at + FRAME_BYTES);
      if (values.stamp && frame.length >= 8) frame.writeDoubleLE(performance.timeOrigin + performance.now(), 0);
      ws.send(frame);
      sent += frame.length / 2;
      log(ws, 'model_progress', { generated_sec: sent / 24_000, chunk_sec: frame.length / 2 / 24_000 });
      if (at === 0) {
        log(ws, 'backend_first_chunk_sent');
        if (text.includes('[[crash]]')) process.exit(3);
      }
      if (frameMs) await new Promise((resolve) => setTimeout(resolve, frameMs));
    }
    if (disconnected) console.log('client_disconnected');
  } catch (error) {
    log(ws, 'backend_error', { message: (error as Error).message });
  } finally {
    generating--;
    log(ws, 'backend_stream_complete');
    if (ws.readyState === ws.OPEN) ws.close();
  }
}

setTimeout(() => http.listen(Number(values.port), values.host, () => console.log(`[startup] Model ready. listening on ${values.host}:${values.port}`)), Number(values['startup-ms']));
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0));
