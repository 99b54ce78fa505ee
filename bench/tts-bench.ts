/**
 * TTS client overhead: the time from the server sending a frame to our client emitting it as a
 * chunk, next to the same path for a bare `ws` client (the transport alone). The difference is
 * what our client adds per chunk. Server: the VibeVoice protocol double, frames stamped at send.
 */
import WebSocket from 'ws';
import { Logger } from '../src/log/logger.js';
import { VibeVoiceClient } from '../src/tts/vibevoice-client.js';
import { startDoubleSidecar } from '../test/helpers/tts-sidecar.js';
import { summarize, type BenchResult } from './stats.js';

const TEXT = 'This sentence is long enough to give the benchmark a good number of audio frames to time, one after another.';
const now = () => performance.timeOrigin + performance.now();
const stampOf = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset, 8).getFloat64(0, true);

export async function benchTts(): Promise<BenchResult[]> {
  const log = new Logger({ level: 'ERROR', jsonLines: true, write: () => undefined });
  const sidecar = await startDoubleSidecar(log, ['--stamp', '--frame-ms', '10']);
  const tts = new VibeVoiceClient(sidecar, {}, log);
  const ours: number[] = [];
  const bare: number[] = [];
  try {
    for (let round = 0; round < 10; round++) {
      for await (const chunk of tts.synthesize(TEXT, { signal: new AbortController().signal })) {
        if (chunk.length >= 4) ours.push(now() - stampOf(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)));
      }
      await new Promise<void>((resolve, reject) => {
        const ws = new WebSocket(`ws://127.0.0.1:${sidecar.config.port}/stream?${new URLSearchParams({ text: TEXT, voice: 'en-Carter_man' })}`);
        ws.on('message', (data, isBinary) => {
          if (isBinary && (data as Buffer).length >= 8) bare.push(now() - stampOf(data as Buffer));
        });
        ws.on('close', () => resolve());
        ws.on('error', reject);
      });
    }
  } finally {
    await tts.dispose();
  }
  return [
    summarize('TTS frame sent -> our client emits chunk', 'ms', ours),
    summarize('TTS frame sent -> bare ws message (baseline)', 'ms', bare),
  ];
}
