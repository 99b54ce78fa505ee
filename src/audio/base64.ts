/** Strict base64: Node's decoder skips invalid characters silently, so check first. */
import { InvalidInputError } from '../errors.js';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const BASE64_URL = /^[A-Za-z0-9_-]*={0,2}$/;

export function decodeBase64(text: string, field: string): Buffer {
  const compact = text.replace(/\s+/g, '');
  const payload = compact.startsWith('data:') ? compact.slice(compact.indexOf(',') + 1) : compact;
  if (payload.length === 0) throw new InvalidInputError(`${field}: is empty`);
  const valid = (BASE64.test(payload) || BASE64_URL.test(payload)) && payload.replace(/=+$/, '').length % 4 !== 1;
  if (!valid) throw new InvalidInputError(`${field}: is not valid base64`);
  return Buffer.from(payload, payload.includes('-') || payload.includes('_') ? 'base64url' : 'base64');
}

export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}
