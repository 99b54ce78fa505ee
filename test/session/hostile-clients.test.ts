/**
 * Clients that break the WebSocket protocol, before and after auth, must never take the worker down:
 * each gets an error or a close, and the next good client is served. Vitest fails the run on any
 * uncaught exception or unhandled 'error' event, so a crash of the process shows as a failure here.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { S2sHandler } from '../../handler/s2s-handler.js';
import { bytesToPcm16 } from '../../src/audio/pcm.js';
import { MAX_AUDIO_FRAME_BYTES } from '../../src/session/protocol.js';
import { clientFrame, OPCODE, RawWebSocket } from '../helpers/raw-websocket.js';
import { expectSessionServed } from '../helpers/session-client.js';
import { testProfileHandler } from '../helpers/test-profile.js';

const TOKEN = 'hostile-clients-token-0123456789';
let handler: S2sHandler;
let server: Server;
let port: number;

beforeAll(async () => {
  handler = await testProfileHandler({ S2S_SESSION_IDLE_MS: '5000' });
  server = createServer((_req, res) => res.writeHead(404).end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  handler.serveSessionsOn(server, TOKEN);
  port = (server.address() as AddressInfo).port;
}, 60_000);
afterAll(async () => {
  await handler?.dispose();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
});

/** A good session still works: the worker is alive and serving. */
const goodSessionWorks = () => expectSessionServed(`ws://127.0.0.1:${port}/ws?token=${TOKEN}`);

describe('bytesToPcm16', () => {
  it('copies exactly the bytes of a view at an odd offset inside a larger buffer', () => {
    const backing = Buffer.alloc(1 + 6400 + 51); // Buffer#slice is a view, as in a socket read
    backing.fill(0x7f);
    const view = backing.subarray(1, 1 + 6400);
    view.fill(0);
    view[0] = 0x34;
    view[1] = 0x12;
    const pcm = bytesToPcm16(view);
    expect(pcm.length).toBe(3200);
    expect(pcm[0]).toBe(0x1234);
    expect(pcm.subarray(1).every((s) => s === 0)).toBe(true);
  });

  it('never aliases the input (a socket reuses its read buffer)', () => {
    const backing = new Uint8Array(64);
    const view = backing.subarray(2, 10);
    const pcm = bytesToPcm16(view);
    backing.fill(0xff);
    expect(Array.from(pcm)).toEqual([0, 0, 0, 0]);
  });
});

describe('hostile WebSocket clients', () => {
  it('an oversized binary frame before auth gets a close, not a crash', async () => {
    const { status, ws } = await RawWebSocket.open(port, '/ws');
    expect(status).toBe(101);
    ws.write(clientFrame(OPCODE.binary, new Uint8Array(MAX_AUDIO_FRAME_BYTES * 2 + 1000)));
    await ws.closed;
    await goodSessionWorks();
  });

  it('invalid UTF-8 and a reserved opcode, before and after auth, get a close', async () => {
    for (const path of ['/ws', `/ws?token=${TOKEN}`]) {
      for (const frame of [clientFrame(OPCODE.text, new Uint8Array([0xc3, 0x28])), clientFrame(OPCODE.reserved, 'x')]) {
        const { ws } = await RawWebSocket.open(port, path);
        ws.write(frame);
        await ws.closed;
      }
    }
    await goodSessionWorks();
  });

  it('a binary frame right after an odd-length text frame in one write is read as exactly its own samples', async () => {
    const { status, ws } = await RawWebSocket.open(port, `/ws?token=${TOKEN}`);
    expect(status).toBe(101);
    const audio = new Int16Array(3200); // 200 ms of silence at 16 kHz
    // The JSON has an odd length, so the binary payload starts at an odd offset of the read buffer.
    const odd = JSON.stringify({ type: 'ping' });
    expect(odd.length % 2).toBe(1);
    ws.write(clientFrame(OPCODE.text, odd), clientFrame(OPCODE.binary, new Uint8Array(audio.buffer)), clientFrame(OPCODE.text, JSON.stringify({ type: 'end' })));
    await ws.closed;
    const end = ws.texts().find((e) => e.type === 'session_end');
    expect(end?.['audio_in_s']).toBe(0.2);
    expect(ws.texts().filter((e) => e.type === 'error')).toEqual([]);
    await goodSessionWorks();
  });
});
