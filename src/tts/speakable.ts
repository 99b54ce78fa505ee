/**
 * Rewrites text into words a TTS voice can say: markdown, code blocks and emoji removed; numbers,
 * money, percentages, units and symbols in words. VibeVoice does not read digits or symbols
 * reliably. `SpeakableStream` does it on a stream of LLM deltas: whole words go out as soon as the
 * word after them has begun, holding back only what a rule still needs to see (a number that a unit
 * or "%" may follow, an unclosed link or tag, a possible code fence).
 */
const ONES = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven', 'twelve', 'thirteen', 'fourteen', 'fifteen', 'sixteen', 'seventeen', 'eighteen', 'nineteen'];
const TENS = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];
const SCALES: [number, string][] = [
  [1e12, 'trillion'],
  [1e9, 'billion'],
  [1e6, 'million'],
  [1e3, 'thousand'],
];

export function integerToWords(n: number): string {
  if (!Number.isSafeInteger(n)) return String(n).split('').map((d) => ONES[Number(d)] ?? d).join(' ');
  if (n < 0) return `minus ${integerToWords(-n)}`;
  if (n < 20) return ONES[n]!;
  if (n < 100) return TENS[Math.floor(n / 10)]! + (n % 10 ? `-${ONES[n % 10]}` : '');
  if (n < 1000) return `${ONES[Math.floor(n / 100)]} hundred` + (n % 100 ? ` ${integerToWords(n % 100)}` : '');
  for (const [size, name] of SCALES) {
    if (n >= size) return `${integerToWords(Math.floor(n / size))} ${name}` + (n % size ? ` ${integerToWords(n % size)}` : '');
  }
  return String(n);
}

const ORDINAL_WORDS: Record<string, string> = { one: 'first', two: 'second', three: 'third', five: 'fifth', eight: 'eighth', nine: 'ninth', twelve: 'twelfth' };

function ordinal(n: number): string {
  const words = integerToWords(n);
  const match = /([a-z]+)$/.exec(words)!;
  const last = match[1]!;
  const replaced = ORDINAL_WORDS[last] ?? (last.endsWith('y') ? `${last.slice(0, -1)}ieth` : `${last}th`);
  return words.slice(0, match.index) + replaced;
}

/** "1,234.56" -> words; digits after the point are read one by one. */
function numberToWords(text: string): string {
  const [whole, fraction] = text.replace(/,/g, '').split('.');
  const head = integerToWords(Number(whole));
  return fraction ? `${head} point ${fraction.split('').map((d) => ONES[Number(d)]).join(' ')}` : head;
}

/** Years read as people say them: 1999 -> nineteen ninety-nine, 2024 -> twenty twenty-four. */
function yearToWords(year: number): string {
  if (year % 1000 < 10 || (year >= 2000 && year < 2010)) return integerToWords(year);
  const high = Math.floor(year / 100);
  const low = year % 100;
  return `${integerToWords(high)} ${low === 0 ? 'hundred' : low < 10 ? `oh ${ONES[low]}` : integerToWords(low)}`;
}

const UNITS: Record<string, [string, string]> = {
  km: ['kilometer', 'kilometers'],
  m: ['meter', 'meters'],
  cm: ['centimeter', 'centimeters'],
  mm: ['millimeter', 'millimeters'],
  kg: ['kilogram', 'kilograms'],
  g: ['gram', 'grams'],
  mg: ['milligram', 'milligrams'],
  lb: ['pound', 'pounds'],
  lbs: ['pound', 'pounds'],
  mi: ['mile', 'miles'],
  ft: ['foot', 'feet'],
  mph: ['mile per hour', 'miles per hour'],
  'km/h': ['kilometer per hour', 'kilometers per hour'],
  ms: ['millisecond', 'milliseconds'],
  s: ['second', 'seconds'],
  h: ['hour', 'hours'],
  gb: ['gigabyte', 'gigabytes'],
  mb: ['megabyte', 'megabytes'],
  kb: ['kilobyte', 'kilobytes'],
  ghz: ['gigahertz', 'gigahertz'],
  mhz: ['megahertz', 'megahertz'],
  khz: ['kilohertz', 'kilohertz'],
  hz: ['hertz', 'hertz'],
  l: ['liter', 'liters'],
  ml: ['milliliter', 'milliliters'],
};

const CURRENCIES: Record<string, [string, string]> = { $: ['dollar', 'dollars'], '€': ['euro', 'euros'], '£': ['pound', 'pounds'], '¥': ['yen', 'yen'] };

const NUMBER = String.raw`(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)`;

export function toSpeakable(text: string): string {
  return (
    text
      .replace(/’/g, "'")
      // URLs: say the host, not the path and query.
      .replace(/\bhttps?:\/\/([^\s/]+)\S*/gi, (_, host: string) => host.replace(/^www\./, '').split('.').join(' dot '))
      .replace(/\bwww\.([a-z0-9-]+)\.([a-z]{2,})\b/gi, '$1 dot $2')
      // Money: $5, $1,200.50, €3
      .replace(new RegExp(String.raw`([$€£¥])\s?(${NUMBER})`, 'g'), (_, symbol: string, amount: string) => {
        const [singular, plural] = CURRENCIES[symbol]!;
        const [whole, cents] = amount.replace(/,/g, '').split('.');
        const main = `${integerToWords(Number(whole))} ${Number(whole) === 1 ? singular : plural}`;
        if (!cents || /^0+$/.test(cents) || (symbol !== '$' && symbol !== '€')) return main;
        const c = Number(cents.padEnd(2, '0').slice(0, 2));
        return `${main} and ${integerToWords(c)} ${c === 1 ? 'cent' : 'cents'}`;
      })
      .replace(new RegExp(String.raw`(${NUMBER})\s?%`, 'g'), (_, n: string) => `${numberToWords(n)} percent`)
      .replace(new RegExp(String.raw`(-?${NUMBER})\s?°\s?([CF])\b`, 'g'), (_, n: string, scale: string) => `${n.startsWith('-') ? 'minus ' : ''}${numberToWords(n.replace('-', ''))} degrees ${scale === 'C' ? 'Celsius' : 'Fahrenheit'}`)
      .replace(new RegExp(String.raw`(${NUMBER})\s?(km/h|[a-zA-Z]{1,3})\b`, 'g'), (whole, n: string, unit: string) => {
        const names = UNITS[unit.toLowerCase()];
        if (!names) return whole;
        return `${numberToWords(n)} ${Number(n.replace(/,/g, '')) === 1 ? names[0] : names[1]}`;
      })
      .replace(/\b(\d+)(st|nd|rd|th)\b/gi, (_, n: string) => ordinal(Number(n)))
      .replace(/\b(1[1-9]\d\d|20\d\d)\b(?![.,]\d)/g, (_, y: string) => yearToWords(Number(y)))
      .replace(new RegExp(NUMBER, 'g'), (n) => numberToWords(n))
      .replace(/\s*&\s*/g, ' and ')
      .replace(/\s*\+\s*/g, ' plus ')
      .replace(/\s*=\s*/g, ' equals ')
      .replace(/\s*@\s*/g, ' at ')
      .replace(/#(?=\w)/g, 'number ')
      .replace(/[~^\\{}<>|*_#`]/g, ' ')
      .replace(/\s+([.,!?;:])/g, '$1')
      .replace(/\s+/g, ' ')
      .trim()
  );
}

/** Removes markdown, emoji and other unspeakable marks from `raw`; `atLineStart`: `raw` starts a line. */
export function cleanMarkdown(raw: string, atLineStart = true): string {
  return (
    raw
      .split('\n')
      .map((line, i) =>
        i === 0 && !atLineStart
          ? line
          : line
              .replace(/^\s*#{1,6}\s+/, '')
              .replace(/^\s*>\s?/, '')
              .replace(/^\s*(?:[-*+•]|\d+[.)])\s+/, '')
              .replace(/^\s*\|/, ''),
      )
      .join('\n')
      .replace(/!\[[^\]]*\]\([^)]*\)/g, '')
      .replace(/\[([^\]]+)\]\([^)]*\)/g, '$1')
      .replace(/`/g, '')
      .replace(/<\/?[a-z][^>]*>/gi, ' ')
      // Table separator rows and rules: |---|:--:|, ---, ***
      .replace(/(^|\s)[|:-]*-{3,}[|:-]*(?=\s|$)/g, '$1')
      .replace(/\|\s*(?=\n|$)/g, '')
      .replace(/\s*\|\s*/g, ', ')
      .replace(/\*+/g, '')
      .replace(/(^|[\s(])_+|_+(?=[\s).,!?;:]|$)/g, '$1')
      // Emoji, flags, skin tones and the joiners and selectors that combine them.
      .replace(/\p{Extended_Pictographic}|[\u{1F1E6}-\u{1F1FF}]|[\u{1F3FB}-\u{1F3FF}]|\u{FE0F}|\u{200D}|\u{20E3}/gu, '')
  );
}

/**
 * Markdown cleaned, then numbers and symbols in words; '' when nothing is left to say. A piece with
 * no words keeps only its sentence end (". " after an emoji that was removed still ends the sentence).
 */
function speakableSegment(raw: string, atLineStart: boolean, first: boolean): string {
  const spoken = toSpeakable(cleanMarkdown(raw, atLineStart));
  if (!/[\p{L}\p{N}]/u.test(spoken)) return first ? '' : (/[.!?]/.exec(spoken)?.[0] ?? '');
  return first ? spoken.replace(/^[\s,;:.!?]+/, '') : spoken;
}

/** An unclosed construct held back this long (characters) is given up on and spoken as it is. */
const MAX_HELD_CHARS = 300;

/**
 * A word that a rule may join to the next one: a number ("5" + "km", "20" + "%", "3" + "°C"), "$ 5",
 * "3 ° C", and a table's "|" (it is dropped at the end of a row, a comma inside one).
 */
const JOINS_NEXT = /(?:\d|[$€£¥°]|^\|)$/;

/**
 * Normalises an LLM's text for speech as it streams. `push` returns the speakable text that is
 * final now (whole words, each batch ending with a space), `end` the rest.
 */
export class SpeakableStream {
  /** Text outside code blocks not yet let out. */
  #text = '';
  /** Backticks held back because they may start (or end) a fence. */
  #carry = '';
  #inFence = false;
  #atLineStart = true;
  /** Nothing has been let out yet. */
  #first = true;

  push(delta: string): string {
    this.#text += this.#withoutFences(delta, false);
    return this.#release(false);
  }

  end(): string {
    this.#text += this.#withoutFences('', true);
    return this.#release(true);
  }

  /** Appends text, dropping fenced code blocks (``` ... ```) even when a fence spans deltas. */
  #withoutFences(delta: string, final: boolean): string {
    let input = this.#carry + delta;
    this.#carry = '';
    if (!final) {
      const run = /`*$/.exec(input)![0].length;
      if (run > 0 && run < 3) {
        this.#carry = input.slice(-run);
        input = input.slice(0, -run);
      }
    }
    let out = '';
    for (;;) {
      const fence = input.indexOf('```');
      if (fence < 0) break;
      if (!this.#inFence) out += input.slice(0, fence) + '\n';
      this.#inFence = !this.#inFence;
      input = input.slice(fence + 3);
    }
    return this.#inFence ? out : out + input;
  }

  #release(final: boolean): string {
    const cut = final ? this.#text.length : this.#safeEnd();
    if (cut === 0) return '';
    const raw = this.#text.slice(0, cut);
    this.#text = this.#text.slice(cut);
    const spoken = speakableSegment(raw, this.#atLineStart, this.#first);
    this.#atLineStart = /\n\s*$/.test(raw);
    if (!spoken) return '';
    this.#first = false;
    // The trailing space tells the engine that the last word is whole (it holds back a partial one).
    return final ? spoken : `${spoken} `;
  }

  /** How much of the text can be normalised now, whatever comes next. */
  #safeEnd(): number {
    const text = this.#text;
    // Whole words only: up to the white space before the word still being written.
    let end = text.length;
    while (end > 0 && !/\s/.test(text[end - 1]!)) end--;
    // An unclosed link, image or tag: from its opening on.
    const open = unclosedAt(text.slice(0, end));
    if (open >= 0 && end - open < MAX_HELD_CHARS) end = open;
    // The last whole words, while a rule may join them to the next ("-3 ° C" holds all three).
    for (;;) {
      const words = text.slice(0, end).trimEnd();
      const lastStart = Math.max(words.lastIndexOf(' '), words.lastIndexOf('\n'), words.lastIndexOf('\t')) + 1;
      if (words === '' || !JOINS_NEXT.test(words.slice(lastStart))) return end;
      end = lastStart;
    }
  }
}

/** Where an unclosed "[text](url)", "![alt](url)" or "<tag ...>" starts in `text`, else -1. */
function unclosedAt(text: string): number {
  const bracket = text.lastIndexOf('[');
  if (bracket >= 0) {
    const close = text.indexOf(']', bracket);
    if (close < 0) return text[bracket - 1] === '!' ? bracket - 1 : bracket;
    // "](" is a link whose address may still be arriving; "]" followed by the end may become one.
    const after = text.slice(close + 1);
    if (after === '' || (after.startsWith('(') && !after.includes(')'))) return text[bracket - 1] === '!' ? bracket - 1 : bracket;
  }
  const tag = text.search(/<\/?[a-z][^>]*$/i);
  return tag;
}

/** A whole text normalised for speech at once. */
export function speakable(text: string): string {
  const stream = new SpeakableStream();
  return (stream.push(text) + stream.end()).trim();
}
