/**
 * Seeded generators of bad input, so every failure can be replayed with its seed: job inputs from
 * the job schema itself (zod -> JSON Schema, then a valid value per schema with hostile values put
 * at random paths), audio bytes (random bytes, WAV headers that lie, extreme PCM), junk base64,
 * and WebSocket frames.
 */
import { z } from 'zod';
import { sessionJobInputSchema, turnJobInputSchema } from '../../handler/job-input.js';

/** mulberry32: small, fast and good enough to pick test cases; the same seed gives the same cases. */
export class Rng {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  }
  int(maxExclusive: number): number {
    return Math.floor(this.next() * maxExclusive);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

interface JsonSchema {
  type?: string;
  const?: unknown;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  format?: string;
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
}

export const TURN_SCHEMA = z.toJSONSchema(turnJobInputSchema, { unrepresentable: 'any' }) as JsonSchema;
export const SESSION_SCHEMA = z.toJSONSchema(sessionJobInputSchema, { unrepresentable: 'any' }) as JsonSchema;

/** A value the schema accepts (refinements aside: audio fields are set by the caller). */
export function validFor(schema: JsonSchema, rng: Rng): unknown {
  if (schema.const !== undefined) return schema.const;
  if (schema.enum) return rng.pick(schema.enum);
  switch (schema.type) {
    case 'string':
      return schema.format === 'uri' ? 'http://127.0.0.1:9/audio.wav' : 'x'.repeat(Math.max(schema.minLength ?? 1, 1 + rng.int(Math.min(20, schema.maxLength ?? 20))));
    case 'integer':
    case 'number': {
      const min = schema.minimum ?? 0;
      const max = schema.maximum ?? 1_000;
      const value = min + rng.next() * (max - min);
      return schema.type === 'integer' ? Math.round(value) : value;
    }
    case 'boolean':
      return rng.chance(0.5);
    case 'array': {
      const n = Math.max(schema.minItems ?? 0, rng.int(3));
      return Array.from({ length: n }, () => validFor(schema.items ?? {}, rng));
    }
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [key, sub] of Object.entries(schema.properties ?? {})) {
        if (schema.required?.includes(key) || rng.chance(0.3)) out[key] = validFor(sub, rng);
      }
      return out;
    }
    default:
      return null;
  }
}

const PROTO_KEYS = ['__proto__', 'constructor', 'prototype'] as const;

/** An object with an own `__proto__` (or `constructor`) key, as JSON.parse makes it. */
function protoObject(rng: Rng): Record<string, unknown> {
  const payload = { polluted: true, toString: 'x', valueOf: 1, isAdmin: true };
  const key = rng.pick(PROTO_KEYS);
  return JSON.parse(`{${JSON.stringify(key)}: ${JSON.stringify(payload)}}`) as Record<string, unknown>;
}

function deep(depth: number, asArray: boolean): unknown {
  let value: unknown = 'bottom';
  for (let i = 0; i < depth; i++) value = asArray ? [value] : { a: value };
  return value;
}

export type HostileKind = 'wrong_type' | 'boundary' | 'huge_string' | 'deep_nesting' | 'proto_keys' | 'huge_array' | 'odd_string' | 'null';
export const HOSTILE_KINDS: readonly HostileKind[] = ['wrong_type', 'boundary', 'huge_string', 'deep_nesting', 'proto_keys', 'huge_array', 'odd_string', 'null'];

/** A value the schema refuses, of the kind asked; `wire` keeps it small enough to post. */
export function hostileFor(schema: JsonSchema, kind: HostileKind, rng: Rng, wire: boolean): unknown {
  switch (kind) {
    case 'wrong_type': {
      const all = [42, -1.5, 'text', true, [], {}, [1, 'a', null], { type: 'auth' }];
      const type = schema.type;
      return rng.pick(all.filter((v) => (Array.isArray(v) ? type !== 'array' : typeof v === 'object' ? type !== 'object' : typeof v === 'number' ? type !== 'number' && type !== 'integer' : typeof v !== type)));
    }
    case 'boundary': {
      if (schema.type === 'integer' || schema.type === 'number') {
        const min = schema.minimum ?? 0;
        const max = schema.maximum ?? 1;
        return rng.pick([min - 1, max + 1, schema.type === 'integer' ? min + 0.5 : max * 10 + 1, 1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, -0 - 1]);
      }
      if (schema.type === 'string') return schema.maxLength !== undefined ? 'y'.repeat(schema.maxLength + 1) : schema.enum || schema.const ? 'not-one-of-them' : '';
      if (schema.type === 'array') return Array.from({ length: (schema.maxItems ?? 0) + 1 }, () => validFor(schema.items ?? {}, rng));
      return rng.pick([[], 'x', 0]);
    }
    case 'huge_string':
      return rng.pick(['a', '\u00e9', '\ud83d\ude00', '"\\']).repeat((wire ? 256 : 1024) * 1024 * (1 + rng.int(3)));
    case 'deep_nesting':
      // On the wire less deep: JSON.stringify (the test's client, the local API) recurses; JSON.parse does not.
      return deep(wire ? 500 + rng.int(1_000) : 10_000 + rng.int(90_000), rng.chance(0.5));
    case 'proto_keys':
      return protoObject(rng);
    case 'huge_array':
      return Array.from({ length: wire ? 10_000 + rng.int(20_000) : 100_000 + rng.int(200_000) }, (_, i) => (i % 3 === 0 ? { role: 'user', content: i } : i));
    case 'odd_string':
      return rng.pick(['\ud800', '\u0000\u0000', '\ufeff', 'data:,', '   ', '%00', '${process.exit()}', 'http://[::1', 'javascript:alert(1)', 'file:///etc/passwd', '\\x00']);
    case 'null':
      return null;
  }
}

export interface FuzzCase {
  kind: HostileKind;
  /** Where the hostile value went: a property path, or a new key. */
  path: string;
  input: unknown;
}

/**
 * A job input: valid for its mode except for one hostile value at a random path (a schema field,
 * a turn's field, or a key the schema does not know, `__proto__` and `constructor` among them).
 */
export function fuzzJobInput(rng: Rng, goodAudio: string, wire: boolean): FuzzCase {
  const session = rng.chance(0.25);
  const schema = session ? SESSION_SCHEMA : TURN_SCHEMA;
  const input = validFor(schema, rng) as Record<string, unknown>;
  delete input['audio_url'];
  delete input['turns'];
  delete input['audio_format'];
  delete input['sample_rate'];
  if (!session) input['audio'] = goodAudio;
  const kind = rng.pick(HOSTILE_KINDS);
  const fields = Object.keys(schema.properties ?? {});
  const target = rng.chance(0.15) ? rng.pick([...PROTO_KEYS, 'unknown_field', 'x'.repeat(wire ? 1_000 : 100_000)]) : rng.pick(fields);
  let path = target;
  if (!session && target === 'turns' && rng.chance(0.5)) {
    // Inside a turn: a hostile value for one of its fields.
    const itemSchema = schema.properties!['turns']!.items!;
    const field = rng.pick(Object.keys(itemSchema.properties ?? {}));
    delete input['audio'];
    input['turns'] = [{ audio: goodAudio }, { audio: goodAudio, [field]: hostileFor(itemSchema.properties![field]!, kind, rng, wire) }];
    path = `turns.1.${field}`;
  } else {
    Object.defineProperty(input, target, { value: hostileFor(schema.properties?.[target] ?? {}, kind, rng, wire), enumerable: true, writable: true, configurable: true });
  }
  // Own `__proto__` keys, as JSON.parse makes them: hostile objects come from JSON.parse, new keys from defineProperty.
  return { kind, path: path.slice(0, 40), input };
}

// ---- audio ---------------------------------------------------------------------------------

function wavHeader(o: { riffSize?: number; format?: number; channels?: number; rate?: number; byteRate?: number; align?: number; bits?: number; fmtSize?: number; dataSize?: number }): Buffer {
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(o.riffSize ?? 36, 4);
  header.write('WAVE', 8, 'ascii');
  header.write('fmt ', 12, 'ascii');
  header.writeUInt32LE(o.fmtSize ?? 16, 16);
  header.writeUInt16LE(o.format ?? 1, 20);
  header.writeUInt16LE(o.channels ?? 1, 22);
  header.writeUInt32LE(o.rate ?? 16_000, 24);
  header.writeUInt32LE(o.byteRate ?? 32_000, 28);
  header.writeUInt16LE(o.align ?? 2, 32);
  header.writeUInt16LE(o.bits ?? 16, 34);
  header.write('data', 36, 'ascii');
  header.writeUInt32LE(o.dataSize ?? 0, 40);
  return header;
}

export interface AudioCase {
  name: string;
  bytes: Buffer;
  format: 'wav' | 'pcm16';
}

/** Random bytes, lying WAV headers and extreme PCM. */
export function fuzzAudio(rng: Rng): AudioCase {
  const body = (n: number) => rng.bytes(n);
  const u32 = () => rng.pick([0, 1, 2, 0x7fffffff, 0xffffffff, 44, 1 + rng.int(1_000_000)]);
  const u16 = () => rng.pick([0, 1, 2, 3, 7, 8, 24, 32, 64, 0xffff, rng.int(65_536)]);
  const which = rng.int(9);
  switch (which) {
    case 0:
      return { name: 'random bytes as wav', bytes: body(1 + rng.int(20_000)), format: 'wav' };
    case 1:
      return { name: 'random bytes as pcm16 (odd length too)', bytes: body(1 + rng.int(20_000)), format: 'pcm16' };
    case 2:
      return { name: 'data size lies (larger than the file)', bytes: Buffer.concat([wavHeader({ dataSize: u32() }), body(rng.int(4_000))]), format: 'wav' };
    case 3:
      return { name: 'riff size lies', bytes: Buffer.concat([wavHeader({ riffSize: u32(), dataSize: 3200 }), body(3200)]), format: 'wav' };
    case 4: {
      const header = wavHeader({ format: rng.pick([0, 2, 3, 6, 7, 0xfffe, 0xffff]), channels: u16(), rate: u32(), byteRate: u32(), align: u16(), bits: u16(), dataSize: 6400 });
      return { name: 'fmt fields out of range', bytes: Buffer.concat([header, body(6400)]), format: 'wav' };
    }
    case 5: {
      const header = wavHeader({ fmtSize: u32(), dataSize: 3200 });
      return { name: 'fmt chunk size lies', bytes: Buffer.concat([header, body(3200)]), format: 'wav' };
    }
    case 6:
      return { name: 'header only, truncated at random', bytes: wavHeader({ dataSize: 3200 }).subarray(0, rng.int(44)), format: 'wav' };
    case 7: {
      // Extreme PCM: full-scale square at Nyquist, DC at the rails, alternating rails.
      const samples = new Int16Array(16_000 + rng.int(16_000));
      const shape = rng.int(3);
      for (let i = 0; i < samples.length; i++) samples[i] = shape === 0 ? (i % 2 ? 32_767 : -32_768) : shape === 1 ? 32_767 : i % 160 < 80 ? -32_768 : 32_767;
      const pcm = Buffer.from(samples.buffer);
      return { name: `extreme pcm (shape ${shape})`, bytes: rng.chance(0.5) ? Buffer.concat([wavHeader({ dataSize: pcm.length, riffSize: 36 + pcm.length }), pcm]) : pcm, format: rng.chance(0.5) ? 'wav' : 'pcm16' };
    }
    default: {
      // Float WAV with NaN and Infinity in it.
      const floats = new Float32Array(8_000).map((_, i) => rng.pick([Number.NaN, Infinity, -Infinity, 1e30, 0.5, i % 2]));
      const data = Buffer.from(floats.buffer);
      return { name: 'float wav with NaN/Inf', bytes: Buffer.concat([wavHeader({ format: 3, bits: 32, align: 4, byteRate: 64_000, dataSize: data.length, riffSize: 36 + data.length }), data]), format: 'wav' };
    }
  }
}

/** Text that is not valid base64, or is base64 of nothing useful. */
export function junkBase64(rng: Rng): string {
  return rng.pick([
    '!!!!',
    'A',
    'AAAAA',
    '====',
    'UklGR===x',
    'data:audio/wav;base64,',
    'data:audio/wav;base64,@@@@',
    '\u00e9\u00e9\u00e9\u00e9',
    'UklG Rg==\n\t',
    'QUJD-_+/',
    Buffer.from(rng.bytes(64)).toString('latin1'),
    'A'.repeat(1 + rng.int(100)) + '=',
    ' '.repeat(100),
  ]);
}

// ---- WebSocket frames ------------------------------------------------------------------------

export interface FrameSpec {
  opcode: number;
  payload: Buffer;
  name: string;
}

/** A frame a hostile client may send: random binary and text, invalid UTF-8, bad opcodes, JSON of the wrong shape. */
export function fuzzFrame(rng: Rng, maxPayload: number): FrameSpec {
  const which = rng.int(10);
  switch (which) {
    case 0:
      return { opcode: 0x2, payload: rng.bytes(rng.int(8_000)), name: 'random binary' };
    case 1:
      return { opcode: 0x2, payload: rng.bytes(1 + 2 * rng.int(100)), name: 'odd-length binary' };
    case 2:
      return { opcode: 0x1, payload: Buffer.from(rng.bytes(rng.int(300)).toString('latin1')), name: 'random text' };
    case 3:
      return { opcode: 0x1, payload: Buffer.from([0xc3, 0x28, 0xa0, 0xa1, 0xf0, 0x28, 0x8c, 0xbc]), name: 'invalid utf-8' };
    case 4:
      return { opcode: rng.pick([0x3, 0x4, 0x5, 0x6, 0x7, 0xb, 0xc, 0xf]), payload: rng.bytes(rng.int(10)), name: 'reserved opcode' };
    case 5:
      return { opcode: 0x2, payload: Buffer.alloc(maxPayload + 1 + rng.int(1000)), name: 'oversized binary' };
    case 6: {
      const message = rng.pick<unknown>([
        { type: 'config', temperature: 'hot' },
        { type: 'text', text: '' },
        { type: 'text', text: 'x'.repeat(9_000) },
        { type: 'auth', token: 'again' },
        { type: 'nope' },
        { type: 'config', voice: 'no-such-voice' },
        { type: 'end', extra: 1 },
        [],
        null,
        42,
        JSON.parse('{"__proto__":{"type":"end"}}'),
        { type: 'ping', constructor: { prototype: { polluted: true } } },
      ]);
      return { opcode: 0x1, payload: Buffer.from(JSON.stringify(message)), name: 'json of the wrong shape' };
    }
    case 7:
      return { opcode: 0x9, payload: rng.bytes(126 + rng.int(100)), name: 'ping over 125 bytes' };
    case 8:
      return { opcode: 0x0, payload: rng.bytes(rng.int(100)), name: 'continuation with nothing to continue' };
    default:
      return { opcode: 0x1, payload: Buffer.from('{"type":"ping"'), name: 'truncated json' };
  }
}
