/**
 * Secrets (session tokens, API keys) compared without leaking them through timing. Both sides are
 * hashed to fixed-length SHA-256 digests and compared with `crypto.timingSafeEqual`, so neither the
 * secret's length nor the position of the first wrong character shows in how long a refusal takes.
 * Tables of secrets are keyed by digest: a lookup's timing can depend only on the digest of what a
 * client sent, which tells it nothing about a stored secret (SHA-256 has no known preimages).
 */
import { createHash, timingSafeEqual } from 'node:crypto';

const sha256 = (secret: string) => createHash('sha256').update(secret, 'utf8').digest();

/** The SHA-256 digest of a secret, hex: the key of a table of secrets. */
export function secretDigest(secret: string): string {
  return sha256(secret).toString('hex');
}

/** Whether `given` equals `expected`, in time independent of where (or whether) they differ. */
export function secretsEqual(given: string, expected: string): boolean {
  return timingSafeEqual(sha256(given), sha256(expected));
}
