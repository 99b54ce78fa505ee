/**
 * Fetches a job's `audio_url`: http(s) only, a size and a time limit, and addresses inside the
 * worker's network (loopback, private, link-local: the cloud metadata service lives there)
 * refused unless allowed, so a job cannot make the worker reach inside.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { InvalidInputError } from '../errors.js';

export interface FetchLimits {
  maxBytes: number;
  timeoutMs: number;
  allowPrivateAddresses: boolean;
}

const MAX_REDIRECTS = 5;

/** `isInternal` decides which addresses are inside (tests move the line, to have an "outside" on loopback). */
export async function fetchAudio(url: string, limits: FetchLimits, field: string, signal: AbortSignal, isInternal = isInternalAddress): Promise<Uint8Array> {
  const deadline = AbortSignal.any([signal, AbortSignal.timeout(limits.timeoutMs)]);
  let target = await checkUrl(url, limits, field, isInternal);
  let response: Response;
  // Redirects are followed by hand, so every hop is checked like the first URL.
  for (let hop = 0; ; hop++) {
    try {
      response = await fetch(target, { signal: deadline, redirect: 'manual' });
    } catch (cause) {
      signal.throwIfAborted();
      throw new InvalidInputError(`${field}: could not be fetched within ${limits.timeoutMs} ms: ${(cause as Error).message}`, { cause });
    }
    const location = response.headers.get('location');
    if (response.status < 300 || response.status >= 400 || !location) break;
    await response.body?.cancel();
    if (hop >= MAX_REDIRECTS) throw new InvalidInputError(`${field}: more than ${MAX_REDIRECTS} redirects`);
    target = await checkUrl(new URL(location, target).href, limits, field, isInternal);
  }
  if (!response.ok) throw new InvalidInputError(`${field}: the server answered ${response.status}`);
  const declared = Number(response.headers.get('content-length') ?? '0');
  if (declared > limits.maxBytes) throw new InvalidInputError(`${field}: ${declared} bytes is over the limit of ${limits.maxBytes} bytes`);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > limits.maxBytes) throw new InvalidInputError(`${field}: the download passed the limit of ${limits.maxBytes} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** An http(s) URL whose host does not resolve inside the worker's network (unless allowed). */
async function checkUrl(url: string, limits: FetchLimits, field: string, isInternal: (address: string) => boolean): Promise<URL> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidInputError(`${field}: not a valid URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new InvalidInputError(`${field}: only http and https URLs are fetched, got ${parsed.protocol}`);
  }
  if (!limits.allowPrivateAddresses) {
    const host = parsed.hostname.replace(/^\[|\]$/g, '');
    const addresses = isIP(host) ? [host] : await lookup(host, { all: true }).then((r) => r.map((a) => a.address), () => []);
    if (addresses.length === 0) throw new InvalidInputError(`${field}: host ${host} could not be resolved`);
    const inside = addresses.find(isInternal);
    if (inside) throw new InvalidInputError(`${field}: ${host} resolves to ${inside}, an internal address; such URLs are refused`);
  }
  return parsed;
}

/** Loopback, private (RFC 1918, unique local), link-local, CGNAT, unspecified and mapped forms of them. */
export function isInternalAddress(address: string): boolean {
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (isIP(v4) === 4) {
    const [a, b] = v4.split('.').map(Number) as [number, number];
    return a === 0 || a === 10 || a === 127 || (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127);
  }
  const v6 = address.toLowerCase();
  return v6 === '::1' || v6 === '::' || v6.startsWith('fc') || v6.startsWith('fd') || v6.startsWith('fe80');
}
