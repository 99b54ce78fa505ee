/**
 * Cuts the LLM's token stream into pieces for TTS: the first piece at the first clause boundary
 * (comma, semicolon, colon, dash) or after `firstChunkMaxWords` words, so speech can start early;
 * later pieces at sentence ends. A boundary counts only once the next character is known to be
 * white space, so "3.5", "1,000", "e.g." and URLs are never split. Markdown, code blocks and
 * emoji are removed: only speakable text reaches TTS.
 */
export interface ChunkerOptions {
  /** No piece shorter than this (VibeVoice is unstable on three words or fewer), except the last. */
  minChunkWords: number;
  /** The first piece is cut here even without punctuation. */
  firstChunkMaxWords: number;
  /** A sentence longer than this is cut at a clause boundary or word. */
  maxChunkWords: number;
}

export const DEFAULT_CHUNKER_OPTIONS: ChunkerOptions = { minChunkWords: 4, firstChunkMaxWords: 12, maxChunkWords: 40 };

/** Words that end with a period but do not end a sentence. */
const ABBREVIATIONS = new Set(['mr', 'mrs', 'ms', 'dr', 'prof', 'sr', 'jr', 'st', 'vs', 'mt', 'fig', 'approx', 'dept', 'est']);

const SENTENCE_END = new Set(['.', '!', '?', '…']);
const CLAUSE_END = new Set([',', ';', ':', '—', '–']);
const CLOSERS = new Set(['"', "'", ')', ']', '”', '’', '*', '_']);

type Boundary = { end: number; kind: 'sentence' | 'clause' | 'word' };

export class ClauseChunker {
  readonly #options: ChunkerOptions;
  /** Text waiting to be cut (code blocks already removed). */
  #text = '';
  /** Backticks held back because they may start a fence. */
  #carry = '';
  #inFence = false;
  #chunks = 0;

  constructor(options: Partial<ChunkerOptions> = {}) {
    this.#options = { ...DEFAULT_CHUNKER_OPTIONS, ...options };
  }

  /** Adds a delta; returns the pieces it completed. */
  push(delta: string): string[] {
    this.#feed(delta, false);
    return this.#cut(false);
  }

  /** Ends the stream; returns what is left. */
  flush(): string[] {
    this.#feed('', true);
    return this.#cut(true);
  }

  /** Appends text, dropping fenced code blocks (``` ... ```) even when a fence spans deltas. */
  #feed(delta: string, final: boolean): void {
    let input = this.#carry + delta;
    this.#carry = '';
    if (!final) {
      const run = /`*$/.exec(input)![0].length;
      if (run > 0 && run < 3) {
        this.#carry = input.slice(-run);
        input = input.slice(0, -run);
      }
    }
    for (;;) {
      const fence = input.indexOf('```');
      if (fence < 0) break;
      if (!this.#inFence) this.#text += input.slice(0, fence) + '\n';
      this.#inFence = !this.#inFence;
      input = input.slice(fence + 3);
    }
    if (!this.#inFence) this.#text += input;
  }

  #cut(final: boolean): string[] {
    const pieces: string[] = [];
    for (;;) {
      const boundary = this.#findBoundary(final);
      if (!boundary) break;
      const piece = cleanForSpeech(this.#text.slice(0, boundary.end));
      this.#text = this.#text.slice(boundary.end).replace(/^\s+/, '');
      if (piece) {
        pieces.push(piece);
        this.#chunks++;
      }
    }
    if (final) {
      const rest = cleanForSpeech(this.#text);
      this.#text = '';
      if (rest) pieces.push(rest);
    }
    return pieces;
  }

  #findBoundary(final: boolean): Boundary | null {
    const text = this.#text;
    const first = this.#chunks === 0;
    const { minChunkWords, firstChunkMaxWords, maxChunkWords } = this.#options;
    let words = 0;
    let inWord = false;
    let lastClause: number | null = null;
    for (let i = 0; i < text.length; i++) {
      const char = text[i]!;
      const isSpace = /\s/.test(char);
      if (!isSpace && !inWord) inWord = true;
      if (isSpace && inWord) {
        inWord = false;
        if (isSpokenWord(wordBefore(text, i))) words++;
        if (first && words >= firstChunkMaxWords) return { end: i, kind: 'word' };
        if (!first && words >= maxChunkWords) return { end: lastClause ?? i, kind: lastClause ? 'clause' : 'word' };
      }
      if (char === '\n' && words >= minChunkWords) return { end: i, kind: 'sentence' };
      if (!SENTENCE_END.has(char) && !CLAUSE_END.has(char)) continue;
      // The boundary ends after any closing quotes or emphasis markers, and needs white space after them.
      let end = i + 1;
      while (end < text.length && CLOSERS.has(text[end]!)) end++;
      if (end >= text.length ? !final : !/\s/.test(text[end]!)) continue;
      if (char === '.' && isAbbreviationOrMarker(text, i)) continue;
      if (char === ',' && /\.\s*$/.test(text.slice(0, i)) && isAbbreviationOrMarker(text, i - 1)) continue;
      const wordsHere = words + (inWord && isSpokenWord(wordBefore(text, i)) ? 1 : 0);
      if (wordsHere < minChunkWords) continue;
      if (SENTENCE_END.has(char)) return { end, kind: 'sentence' };
      if (first) return { end, kind: 'clause' };
      lastClause = end;
    }
    return null;
  }
}

/** Words that will be spoken: not list markers ("1.", "-") or bare symbols. */
function isSpokenWord(word: string): boolean {
  return /[\p{L}\p{N}]/u.test(word) && !/^\d+[.)]$/.test(word);
}

/** The word (non-space run) that ends just before position `end`. */
function wordBefore(text: string, end: number): string {
  let start = end;
  while (start > 0 && !/\s/.test(text[start - 1]!)) start--;
  return text.slice(start, end);
}

/** A period that belongs to "Dr.", "e.g.", "U.S." or a list number at the start of a line. */
function isAbbreviationOrMarker(text: string, dot: number): boolean {
  const word = wordBefore(text, dot + 1).replace(/^[("'“‘*_]+/, '');
  const bare = word.slice(0, -1).toLowerCase();
  if (ABBREVIATIONS.has(bare)) return true;
  if (/^(?:\p{L}\.)+$/u.test(word) && word.length <= 6) return true;
  if (/^\d+\.$/.test(word)) {
    const lineStart = text.lastIndexOf('\n', dot) + 1;
    return text.slice(lineStart, dot + 1).trim() === word;
  }
  return false;
}

/** Removes markdown, emoji and other unspeakable marks; keeps the words. */
export function cleanForSpeech(raw: string): string {
  return raw
    .replace(/!\[[^\]]*\]\([^)]*\)/g, '')
    .replace(/\[([^\]]+)\]\([^)]*\)/g, '$1')
    .replace(/`([^`]*)`/g, '$1')
    .replace(/`/g, '')
    .replace(/^\s*#{1,6}\s+/gm, '')
    .replace(/^\s*>\s?/gm, '')
    .replace(/^\s*(?:[-*+•]|\d+[.)])\s+/gm, '')
    .replace(/^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$/gm, '')
    .replace(/^\s*\||\|\s*$/gm, '')
    .replace(/\s*\|\s*/g, ', ')
    .replace(/<\/?[a-z][^>]*>/gi, ' ')
    .replace(/\*+/g, '')
    .replace(/(^|[\s(])_+|_+(?=[\s).,!?;:]|$)/g, '$1')
    // Emoji, flags, skin tones and the joiners and selectors that combine them.
    .replace(/\p{Extended_Pictographic}|[\u{1F1E6}-\u{1F1FF}]|[\u{1F3FB}-\u{1F3FF}]|\u{FE0F}|\u{200D}|\u{20E3}/gu, '')
    .replace(/\s+([.,!?;:])/g, '$1')
    .replace(/^[\s,;:]+/, '')
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/^[^\p{L}\p{N}]+$/u, '');
}

/** Chunks an LLM delta stream. */
export async function* chunkClauses(deltas: AsyncIterable<string>, options: Partial<ChunkerOptions> = {}): AsyncGenerator<string> {
  const chunker = new ClauseChunker(options);
  for await (const delta of deltas) yield* chunker.push(delta);
  yield* chunker.flush();
}
