/**
 * Fetches a job's `audio_url`: http(s) only, a size and a time limit, and addresses inside the
 * worker's network (loopback, private, link-local: the cloud metadata service lives there)
 * refused unless allowed, so a job cannot make the worker reach inside.
 *
 * The host is resolved once per connection, inside the connection's own lookup, and the
 * addresses checked there are the ones connected to: a name whose DNS answer changes between a
 * check and the connection (DNS rebinding) cannot slip through. Redirects are followed by hand,
 * each hop checked the same way.
 */
import { lookup } from 'node:dns/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { InvalidInputError } from '../errors.js';

export interface FetchLimits {
  maxBytes: number;
  timeoutMs: number;
  allowPrivateAddresses: boolean;
}

/** How host names become addresses, and which addresses are refused. Tests give their own. */
export interface AudioUrlNetwork {
  resolve(host: string): Promise<string[]>;
  refuses(address: string): boolean;
}

export const SYSTEM_NETWORK: AudioUrlNetwork = {
  resolve: async (host) => (await lookup(host, { all: true })).map((a) => a.address),
  refuses: (address) => isInternalAddress(address),
};

const MAX_REDIRECTS = 5;

export async function fetchAudio(url: string, limits: FetchLimits, field: string, signal: AbortSignal, network: AudioUrlNetwork = SYSTEM_NETWORK): Promise<Uint8Array> {
  const timeout = AbortSignal.timeout(limits.timeoutMs);
  const deadline = AbortSignal.any([signal, timeout]);
  const lookup = checkedLookup(limits, field, network);
  let target = checkUrl(url, limits, field, network);
  let response: IncomingMessage;
  for (let hop = 0; ; hop++) {
    response = await get(target, lookup, deadline, signal, limits, field);
    const status = response.statusCode ?? 0;
    const location = response.headers.location;
    if (status < 300 || status >= 400 || !location) break;
    response.destroy();
    if (hop >= MAX_REDIRECTS) throw new InvalidInputError(`${field}: more than ${MAX_REDIRECTS} redirects`);
    target = checkUrl(new URL(location, target).href, limits, field, network);
  }
  const status = response.statusCode ?? 0;
  if (status < 200 || status >= 300) {
    response.destroy();
    throw new InvalidInputError(`${field}: the server answered ${status}`);
  }
  const declared = Number(response.headers['content-length'] ?? '0');
  if (declared > limits.maxBytes) {
    response.destroy();
    throw new InvalidInputError(`${field}: ${declared} bytes is over the limit of ${limits.maxBytes} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of response as AsyncIterable<Buffer>) {
      size += chunk.byteLength;
      if (size > limits.maxBytes) throw new InvalidInputError(`${field}: the download passed the limit of ${limits.maxBytes} bytes`);
      chunks.push(chunk);
    }
  } catch (error) {
    response.destroy();
    if (error instanceof InvalidInputError) throw error;
    signal.throwIfAborted();
    throw new InvalidInputError(`${field}: could not be fetched within ${limits.timeoutMs} ms: ${(error as Error).message}`, { cause: error });
  }
  return Buffer.concat(chunks);
}

/** One GET; resolves with the response head, or throws a clear error (or the caller's abort reason). */
function get(target: URL, lookup: LookupFunction, deadline: AbortSignal, signal: AbortSignal, limits: FetchLimits, field: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    // No shared agent: every fetch connects (and looks up) afresh, and leaves no idle socket behind.
    const request = send(target, { method: 'GET', agent: false, lookup, signal: deadline, headers: { accept: 'audio/wav, audio/*, */*' } }, resolve);
    request.once('error', (error) => {
      if (error instanceof InvalidInputError) return reject(error);
      if (signal.aborted) return reject(signal.reason);
      reject(new InvalidInputError(`${field}: could not be fetched within ${limits.timeoutMs} ms: ${error.message}`, { cause: error }));
    });
    request.end();
  });
}

/** An http(s) URL; a literal address is checked here (no lookup happens for it), a name when it is connected to. */
function checkUrl(url: string, limits: FetchLimits, field: string, network: AudioUrlNetwork): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidInputError(`${field}: not a valid URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new InvalidInputError(`${field}: only http and https URLs are fetched, got ${parsed.protocol}`);
  }
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host) && !limits.allowPrivateAddresses && network.refuses(host)) {
    throw new InvalidInputError(`${field}: ${host} resolves to ${host}, an internal address; such URLs are refused`);
  }
  return parsed;
}

/** The connection's lookup: resolves once, refuses internal answers, and hands over exactly what it checked. */
function checkedLookup(limits: FetchLimits, field: string, network: AudioUrlNetwork): LookupFunction {
  return (hostname, options, callback) => {
    network
      .resolve(hostname)
      .catch(() => [] as string[])
      .then((addresses) => {
        if (addresses.length === 0) throw new InvalidInputError(`${field}: host ${hostname} could not be resolved`);
        const inside = limits.allowPrivateAddresses ? undefined : addresses.find((a) => network.refuses(a));
        if (inside) throw new InvalidInputError(`${field}: ${hostname} resolves to ${inside}, an internal address; such URLs are refused`);
        const wanted = options.family === 4 || options.family === 6 ? addresses.filter((a) => isIP(a) === options.family) : addresses;
        if (wanted.length === 0) throw new InvalidInputError(`${field}: host ${hostname} has no IPv${options.family} address`);
        if (options.all) callback(null, wanted.map((address) => ({ address, family: isIP(address) })));
        else callback(null, wanted[0]!, isIP(wanted[0]!));
      })
      .catch((error: Error) => callback(error as NodeJS.ErrnoException, '', 0));
  };
}

/**
 * Loopback, private (RFC 1918, unique local), link-local, CGNAT, unspecified, and IPv4 written
 * as IPv6 (mapped, in dotted or hex form, and the old compatible form), which connect to IPv4.
 */
export function isInternalAddress(address: string): boolean {
  const v4 = embeddedIpv4(address.toLowerCase()) ?? address;
  if (isIP(v4) === 4) {
    const [a, b] = v4.split('.').map(Number) as [number, number];
    return a === 0 || a === 10 || a === 127 || (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127);
  }
  const v6 = address.toLowerCase();
  return v6 === '::1' || v6 === '::' || v6.startsWith('fc') || v6.startsWith('fd') || /^fe[89ab]/.test(v6);
}

/** The IPv4 address inside ::ffff:a.b.c.d, ::ffff:7f00:1 or ::a.b.c.d, if any. */
function embeddedIpv4(v6: string): string | null {
  const dotted = /^::(?:ffff:)?(\d+\.\d+\.\d+\.\d+)$/.exec(v6);
  if (dotted) return dotted[1]!;
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(v6);
  if (!hex) return null;
  const high = parseInt(hex[1]!, 16);
  const low = parseInt(hex[2]!, 16);
  return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
}
