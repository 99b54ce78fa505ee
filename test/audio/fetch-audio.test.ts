/**
 * audio_url fetching: limits, and no way inside the worker's network, redirects included.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchAudio, isInternalAddress, SYSTEM_NETWORK } from '../../src/audio/fetch-audio.js';

let server: Server;
let base: string;
beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/audio.wav') res.writeHead(200, { 'content-type': 'audio/wav' }).end(Buffer.alloc(1000, 1));
    else if (req.url === '/big.wav') res.writeHead(200).end(Buffer.alloc(5000));
    else if (req.url === '/hop') res.writeHead(302, { location: '/audio.wav' }).end();
    else if (req.url === '/inside') res.writeHead(302, { location: `http://127.0.0.2:${(server.address() as AddressInfo).port}/audio.wav` }).end();
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const open = { maxBytes: 2000, timeoutMs: 5000, allowPrivateAddresses: true };
const live = () => new AbortController().signal;

describe('fetchAudio', () => {
  it('fetches within the size limit and follows redirects', async () => {
    expect((await fetchAudio(`${base}/audio.wav`, open, 'audio_url', live())).byteLength).toBe(1000);
    expect((await fetchAudio(`${base}/hop`, open, 'audio_url', live())).byteLength).toBe(1000);
  });

  it('refuses what is too big, missing, or not http(s)', async () => {
    await expect(fetchAudio(`${base}/big.wav`, open, 'audio_url', live())).rejects.toThrow(/limit of 2000 bytes/);
    await expect(fetchAudio(`${base}/nothing`, open, 'audio_url', live())).rejects.toThrow('audio_url: the server answered 404');
    await expect(fetchAudio('file:///etc/passwd', open, 'audio_url', live())).rejects.toThrow('audio_url: only http and https URLs are fetched, got file:');
  });

  // Every redirect hop goes through the same check as the first URL (checkUrl in fetch-audio.ts).
  it('refuses internal addresses', async () => {
    const closed = { ...open, allowPrivateAddresses: false };
    await expect(fetchAudio(`${base}/audio.wav`, closed, 'audio_url', live())).rejects.toThrow(/127\.0\.0\.1, an internal address/);
    expect(['10.1.2.3', '192.168.0.1', '172.16.5.5', '169.254.169.254', '::1', 'fd00::1', '::ffff:127.0.0.1', '100.64.0.1'].every(isInternalAddress)).toBe(true);
    expect(['8.8.8.8', '1.1.1.1', '2001:4860:4860::8888'].some(isInternalAddress)).toBe(false);
  });

  it('refuses a redirect from an allowed host to an internal one', async () => {
    const closed = { ...open, allowPrivateAddresses: false };
    // For this test 127.0.0.1 is "outside" and the rest of loopback inside: the first hop is
    // allowed and answers, the redirect points inside.
    const inside = { ...SYSTEM_NETWORK, refuses: (address: string) => address !== '127.0.0.1' && isInternalAddress(address) };
    expect((await fetchAudio(`${base}/hop`, closed, 'audio_url', live(), inside)).byteLength).toBe(1000);
    await expect(fetchAudio(`${base}/inside`, closed, 'audio_url', live(), inside)).rejects.toThrow('audio_url: 127.0.0.2 resolves to 127.0.0.2, an internal address; such URLs are refused');
  });
});
