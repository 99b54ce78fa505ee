/**
 * One client must not degrade the worker for the others (issue 21, items 10 and 11), over the
 * Realtime API with a bare `ws` client against the test profile's real engines:
 * - a conversation's size is bounded (items, total text, one item's text), with a named error past
 *   the bounds, and everything a session held is freed when it ends;
 * - tool lists are bounded and checked off the event loop, patterns that could backtrack without
 *   end are refused, and every tool list is compiled on the schema thread, another session's audio gap is measured while one client attacks.
 * Each attack counts in the robustness summary (bad inputs tried, sessions run).
 */
import { createServer, type Server } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { sessionOptions } from '../../handler/session-job.js';
import type { S2sHandler } from '../../handler/s2s-handler.js';
import { schemaChecker } from '../../src/llm/schema-checker.js';
import { Logger } from '../../src/log/logger.js';
import { SessionCore, type CoreEvent } from '../../src/session/session-core.js';
import { RealtimeTestClient } from '../helpers/realtime-client.js';
import { testProfileHandler } from '../helpers/test-profile.js';
import { collectGarbage, Tally } from './tally.js';

const TOKEN = 'resource-attacks-token-0123456789';
const tally = new Tally('resource-attacks');
const log = new Logger({ level: 'ERROR', jsonLines: true, write: () => undefined });
let handler: S2sHandler;
let server: Server;
let url: string;

beforeAll(async () => {
  handler = await testProfileHandler({ S2S_SESSION_IDLE_MS: '8000', S2S_SESSION_MAX_ITEMS: '40', S2S_SESSION_MAX_TEXT_CHARS: '200000' });
  server = createServer((_req, res) => res.writeHead(404).end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  handler.serveSessionsOn(server, TOKEN);
  url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/v1/realtime`;
}, 60_000);
afterAll(async () => {
  await handler?.dispose();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  tally.save(inject('robustnessDir'));
});

async function connect(): Promise<RealtimeTestClient> {
  const client = await RealtimeTestClient.connect(url, { token: TOKEN });
  await client.waitFor('session.created');
  tally.add('sessionsRun');
  return client;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `count` tools whose schemas are ordinary but many (about 2 KB each): as much as a client may send. */
function toolList(count: number, tag: string): unknown[] {
  return Array.from({ length: count }, (_, i) => {
    const properties: Record<string, unknown> = {};
    for (let p = 0; p < 6; p++) {
      properties[`${tag}_field_${p}`] = { type: 'object', properties: { a: { type: 'string', pattern: '^[a-z]+$', minLength: 1 }, b: { type: 'array', items: { type: 'integer', minimum: 0 } }, c: { anyOf: [{ type: 'string' }, { type: 'number' }] } }, required: ['a'] };
    }
    return { type: 'function', name: `${tag}_tool_${i}`, description: 'A tool.', parameters: { type: 'object', properties } };
  });
}

/**
 * How long a listener's playback would have run dry over an answer's audio deltas (24 kHz PCM16),
 * from their arrival times: the audio is sent ahead of playback, so only a stall longer than that
 * lead is heard as a gap.
 */
function playbackGapMs(deltas: { at: number; bytes: number }[]): number {
  let playedUntil = deltas[0]?.at ?? 0;
  let gaps = 0;
  for (const { at, bytes } of deltas) {
    if (at > playedUntil) gaps += at - playedUntil;
    playedUntil = Math.max(playedUntil, at) + (bytes / 48_000) * 1000;
  }
  return gaps;
}

const message = (text: string, id?: string) => ({ type: 'conversation.item.create', item: { type: 'message', role: 'user', ...(id && { id }), content: [{ type: 'input_text', text }] } });
const errorsOf = (client: RealtimeTestClient) => client.of('error').map((e) => e['error'] as { code: string; event_id: string | null });

describe('one client against the shared event loop', () => {
  it('large tool lists, unsafe patterns and long texts from one client: another session\'s audio keeps its pace', async () => {
    const listener = await connect();
    const deltas: { at: number; bytes: number }[] = [];
    listener.ws.on('message', (data) => {
      const event = JSON.parse(data.toString()) as { type: string; delta?: string };
      if (event.type === 'response.output_audio.delta') deltas.push({ at: performance.now(), bytes: Buffer.from(event.delta!, 'base64').length });
    });
    listener.send(message('Tell me something.'));
    listener.send({ type: 'response.create' });
    await listener.waitFor('response.output_audio.delta', 30_000);

    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const compiles = vi.spyOn(schemaChecker, 'compile');
    const attacker = await connect();
    const refusedBefore = attacker.of('error').length;
    // As much as the bounds let through, again and again (each list differs, so nothing is cached)...
    for (let n = 0; n < 8; n++) attacker.send({ type: 'session.update', session: { type: 'realtime', tools: toolList(24, `round${n}`) } });
    // ...and what they refuse: a list over the size bound, patterns that backtrack, one item's text too long.
    attacker.send({ type: 'session.update', session: { type: 'realtime', tools: toolList(60, 'huge') } });
    for (const pattern of ['^(a+)+$', '^(\\w+\\s?)*$']) {
      attacker.send({ type: 'session.update', session: { type: 'realtime', tools: [{ type: 'function', name: 'evil', parameters: { type: 'object', properties: { s: { type: 'string', pattern } } } }] } });
    }
    attacker.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'q'.repeat(20_000) }, { type: 'input_text', text: 'r'.repeat(20_000) }] } });
    tally.add('badInputsTried', 12);
    await attacker.waitFor('session.updated', 60_000, 8);
    await listener.waitFor('response.done', 60_000);
    loop.disable();
    const gapMs = playbackGapMs(deltas);
    tally.notes.push(`another session's audio during the tool-list attack: ${gapMs.toFixed(0)} ms of playback gap, event loop delay max ${(loop.max / 1e6).toFixed(0)} ms`);
    // The gap and the loop's delay are measured and reported in the summary line, not asserted: timings
    // are the bench's business on a shared 2-core machine. (Before the schema thread, this attack stalled
    // the loop for about a second at a time and the listener's playback ran dry for more than two.) What
    // is asserted is why it no longer does: every tool list was compiled on the schema thread, not the loop.
    expect(deltas.length).toBeGreaterThan(5);
    expect(compiles.mock.calls.length).toBeGreaterThanOrEqual(8);
    compiles.mockRestore();
    await attacker.waitFor('error', 30_000, refusedBefore + 4);
    expect(attacker.of('error').map((e) => (e['error'] as { code: string }).code)).toEqual(['invalid_value', 'invalid_value', 'invalid_value', 'text_too_long']);
    listener.ws.close();
    attacker.ws.close();
    await sleep(100);
  }, 120_000);
});

describe('conversation size', () => {
  it('items, total text and one item\'s text are bounded: past them conversation.item.create is refused by name', async () => {
    const client = await connect();
    // One item of 40 000 characters in parts of 20 000 (each part is within the schema's bound).
    client.send({ ...message('x'), event_id: 'long', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'a'.repeat(20_000) }, { type: 'input_text', text: 'b'.repeat(20_000) }] } });
    tally.add('badInputsTried');
    await client.waitFor('error');
    expect(errorsOf(client)[0]).toMatchObject({ code: 'text_too_long', event_id: 'long' });
    // Seven items of 30 000 characters: the seventh passes the 200 000 in all.
    for (let n = 0; n < 7; n++) client.send({ ...message('t'.repeat(30_000)), event_id: `big-${n}` });
    tally.add('badInputsTried', 7);
    await client.waitFor('error', 10_000, 2);
    expect(errorsOf(client)[1]).toMatchObject({ code: 'conversation_full', event_id: 'big-6' });
    expect(client.of('conversation.item.added')).toHaveLength(6);
    // Small items up to the count limit (40): the rest are refused; deleting one makes room again.
    for (let n = 0; n < 40; n++) client.send({ ...message(`hello ${n}`, `small_${n}`), event_id: `small-${n}` });
    tally.add('badInputsTried', 40);
    await client.waitFor((e) => e.type === 'error' && (e['error'] as { event_id: string }).event_id === 'small-39');
    expect(client.of('conversation.item.added')).toHaveLength(40);
    expect(errorsOf(client).filter((e) => e.code === 'conversation_full')).toHaveLength(1 + 6);
    client.send({ type: 'conversation.item.delete', item_id: 'small_0' });
    await client.waitFor('conversation.item.deleted');
    client.send({ ...message('one more'), event_id: 'after-delete' });
    await client.waitFor('conversation.item.added', 10_000, 41);
    expect(errorsOf(client).some((e) => e.event_id === 'after-delete')).toBe(false);
    client.ws.close();
  }, 60_000);

  it('everything a session held is freed when it ends: its items and the core itself', async () => {
    const events: CoreEvent[] = [];
    const options = { ...sessionOptions(handler.config, {}, handler.engines.tts.voices), maxItems: 1_000, maxTextChars: 5_000_000 };
    let core: SessionCore | null = new SessionCore(handler.engines, await handler.engines.llm.openConversation(), options, log, { event: (e) => events.push(e), audio: () => undefined, ended: () => undefined }, new AbortController().signal);
    tally.add('sessionsRun');
    void core.run();
    for (let n = 0; n < 200; n++) expect(core.addItem({ role: 'user', text: `${n} ${'z'.repeat(20_000)}` })).toHaveProperty('id');
    expect(core.items).toHaveLength(200);
    const items = new WeakRef(core.items);
    const ref = new WeakRef(core);
    core.end('client_end');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(core.items).toHaveLength(0);
    core = null;
    events.length = 0;
    for (let n = 0; n < 10 && (ref.deref() || items.deref()); n++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      collectGarbage();
    }
    // Nothing in the worker (timers, the shutdown signal, the engines) still holds the session.
    expect(ref.deref()).toBeUndefined();
    expect(items.deref()).toBeUndefined();
  }, 30_000);
});
