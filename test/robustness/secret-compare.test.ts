/**
 * Secrets are compared in constant time: the local API's key, a load-balancing endpoint's standing
 * session token and the one-use tokens of session jobs. A timing difference cannot be asserted
 * here (no wall-clock assertions), so these tests check what makes a comparison constant-time:
 * every refusal goes through `crypto.timingSafeEqual` over fixed-length digests (spied on below),
 * and one-use tokens are found by their digest, never by the token itself.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, describe, expect, inject, it, vi } from 'vitest';
import WebSocket from 'ws';
import { LocalRunpodApi } from '../../handler/local/runpod-api.js';
import { Logger } from '../../src/log/logger.js';
import { SessionServer } from '../../src/session/session-server.js';
import { secretDigest, secretsEqual } from '../../src/util/secrets.js';
import { Tally } from './tally.js';

const compared = vi.hoisted(() => ({ lengths: [] as [number, number][] }));
vi.mock('node:crypto', async (importOriginal) => {
  const crypto = await importOriginal<typeof import('node:crypto')>();
  return {
    ...crypto,
    timingSafeEqual: (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
      compared.lengths.push([a.byteLength, b.byteLength]);
      return crypto.timingSafeEqual(a, b);
    },
  };
});

const tally = new Tally('secret-compare');
const quiet = new Logger({ level: 'ERROR', jsonLines: true, write: () => undefined });
afterAll(() => tally.save(inject('robustnessDir')));
afterEach(() => {
  compared.lengths.length = 0;
});

describe('secretsEqual', () => {
  it('is true only for the same string: a wrong last character, a prefix, a longer string and the empty string are refused', () => {
    const secret = 'k3y-0123456789abcdef';
    expect(secretsEqual(secret, secret)).toBe(true);
    expect(secretsEqual('k3y-0123456789abcdeg', secret)).toBe(false);
    expect(secretsEqual('k3y-0123', secret)).toBe(false);
    expect(secretsEqual(`${secret}x`, secret)).toBe(false);
    expect(secretsEqual('', secret)).toBe(false);
    expect(secretsEqual('é', 'e\u0301')).toBe(false);
  });

  it('compares fixed-length digests, so a secret of another length is still compared byte for byte', () => {
    secretsEqual('short', 'a much longer expected secret');
    expect(compared.lengths).toEqual([[32, 32]]);
    expect(secretDigest('x')).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('where the worker compares secrets', () => {
  it('the local API refuses wrong keys of every length through timingSafeEqual', async () => {
    const api = await LocalRunpodApi.start({ port: 0, apiKey: 'local-api-key-0123456789', log: quiet });
    try {
      const wrong = ['', 'Bearer ', 'Bearer local-api-key-012345678X', 'Bearer local-api-key-0123456789-and-more', 'local-api-key-0123456789'];
      for (const authorization of wrong) {
        compared.lengths.length = 0;
        const res = await fetch(`${api.url}/v2/${api.endpointId}/health`, { headers: authorization ? { authorization } : {} });
        expect(res.status, authorization).toBe(401);
        expect(compared.lengths.length, authorization).toBeGreaterThan(0);
        tally.add('badInputsTried');
      }
      const ok = await fetch(`${api.url}/v2/${api.endpointId}/health`, { headers: { authorization: 'Bearer local-api-key-0123456789' } });
      expect(ok.status).toBe(200);
    } finally {
      await api.close();
    }
  });

  it('session tokens: the standing token is compared through timingSafeEqual; a one-use token is good once and a near miss never', async () => {
    const server: Server = createServer((_req, res) => res.writeHead(404).end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const sessions = SessionServer.attach(server, quiet);
    const opened: string[] = [];
    const accept = (name: string) => (ws: WebSocket) => {
      opened.push(name);
      ws.send('{"type":"ready"}');
    };
    const oneUse = 'one-use-token-0123456789abcdef';
    sessions.register(oneUse, accept('one-use'), 60_000);
    sessions.setStandingToken('standing-token-0123456789abcd', accept('standing'));
    const base = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/ws?token=`;
    const connect = (token: string) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(base + encodeURIComponent(token));
        ws.once('message', () => {
          ws.close();
          resolve(101);
        });
        ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.once('error', () => resolve(0));
      });
    try {
      for (const nearMiss of ['one-use-token-0123456789abcdeX', 'one-use-token-0123456789abcde', 'standing-token-0123456789abcX', 'standing']) {
        compared.lengths.length = 0;
        expect(await connect(nearMiss), nearMiss).toBe(401);
        // Unknown as a one-use token (looked up by digest), then compared with the standing one.
        expect(compared.lengths, nearMiss).toEqual([[32, 32]]);
        tally.add('badInputsTried');
      }
      expect(await connect(oneUse)).toBe(101);
      expect(await connect(oneUse)).toBe(401);
      expect(await connect('standing-token-0123456789abcd')).toBe(101);
      expect(opened).toEqual(['one-use', 'standing']);
    } finally {
      await sessions.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
