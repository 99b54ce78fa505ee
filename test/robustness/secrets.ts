/**
 * The logs of a suite must never hold a token, an API key or audio. Every suite captures its
 * logs and runs them through this check at the end.
 */
import { expect } from 'vitest';

/** Base64 of a WAV file starts with this ("RIFF"); raw audio in base64 is a long unbroken run. */
const WAV_BASE64 = 'UklGR';
const LONG_BASE64_RUN = /[A-Za-z0-9+/]{400,}/;

export function findSecrets(lines: readonly string[], secrets: { values?: readonly string[]; audio?: boolean }): string[] {
  const found: string[] = [];
  for (const line of lines) {
    for (const value of secrets.values ?? []) if (value.length >= 8 && line.includes(value)) found.push(`secret ${value.slice(0, 4)}... in: ${line.slice(0, 160)}`);
    if (secrets.audio && (line.includes(WAV_BASE64) || LONG_BASE64_RUN.test(line))) found.push(`audio in: ${line.slice(0, 160)}`);
  }
  return found;
}

export function expectNoSecrets(lines: readonly string[], secrets: { values?: readonly string[]; audio?: boolean }): void {
  expect(lines.length).toBeGreaterThan(0); // a check of no logs at all would prove nothing
  expect(findSecrets(lines, secrets)).toEqual([]);
}
