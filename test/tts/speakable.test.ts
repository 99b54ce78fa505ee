/**
 * Text is rewritten into words before it reaches VibeVoice, which does not read digits, symbols or
 * markdown. The streaming normaliser must say exactly what the whole-text one says whatever the LLM's
 * delta splits (inside "**", "```", "3.5", "[link](url)"), and let words out as soon as it can.
 */
import { describe, expect, it } from 'vitest';
import { integerToWords, speakable, SpeakableStream, toSpeakable } from '../../src/tts/speakable.js';

describe('toSpeakable', () => {
  it.each([
    ['It costs $5.50.', 'It costs five dollars and fifty cents.'],
    ['About 20% more.', 'About twenty percent more.'],
    ['We have 1,000 users.', 'We have one thousand users.'],
    ['Pi is 3.14.', 'Pi is three point one four.'],
    ['Run 5 km at 12 km/h.', 'Run five kilometers at twelve kilometers per hour.'],
    ['It is -3 °C outside.', 'It is minus three degrees Celsius outside.'],
    ['In 1999 and 2024.', 'In nineteen ninety-nine and twenty twenty-four.'],
    ['She came 1st & he 2nd.', 'She came first and he second.'],
    ['See https://www.example.com/a?b=1 now.', 'See example dot com now.'],
    ['7 + 5 = 12', 'seven plus five equals twelve'],
  ])('%s', (text, spoken) => {
    expect(toSpeakable(text)).toBe(spoken);
  });

  it('says integers in words', () => {
    expect(integerToWords(0)).toBe('zero');
    expect(integerToWords(42)).toBe('forty-two');
    expect(integerToWords(1_234_567)).toBe('one million two hundred thirty-four thousand five hundred sixty-seven');
  });
});

/** Spacing aside: the stream may send " ." or " ," after a piece that ended with a space. */
const tidy = (text: string) => text.replace(/\s+([.,!?;:])/g, '$1').replace(/\s+/g, ' ').trim();

/** Streams `text` in pieces of 1-7 characters (a seeded split) and returns what was let out, joined. */
function streamed(text: string, seed: number): string {
  let state = seed;
  const random = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const stream = new SpeakableStream();
  let out = '';
  for (let i = 0; i < text.length; ) {
    const size = 1 + Math.floor(random() * 7);
    out += stream.push(text.slice(i, i + size));
    i += size;
  }
  return (out + stream.end()).trim();
}

const cases: [string, string, string][] = [
  ['numbers, money, units and percentages', 'It costs $5.50, or 3.5 km at 12 km/h and 20 % more.', 'It costs five dollars and fifty cents, or three point five kilometers at twelve kilometers per hour and twenty percent more.'],
  ['a temperature written with spaces', 'It is -3 ° C outside.', 'It is minus three degrees Celsius outside.'],
  [
    'markdown, lists and code blocks are removed',
    '**Sure thing!** Here are my two options:\n\n1. **Paris** is nice.\n2. *Rome* is too.\n```js\nconsole.log("no 1");\n```\nEnjoy your trip, my dear friend.',
    'Sure thing! Here are my two options: Paris is nice. Rome is too. Enjoy your trip, my dear friend.',
  ],
  ['headings, quotes, inline code and tables', '## Title\n> quote with `code` and __bold__\n| a | b |\n|---|---|\n| 1 | 2 |', 'Title quote with code and bold a, b one, two'],
  ['emoji are removed', 'That is really great 🎉😀! Let me help you with that today 👍🏽.', 'That is really great! Let me help you with that today.'],
  ['links keep their text, images go', 'Read [the guide](https://x.io/guide?a=1) ![a map](m.png) before you start.', 'Read the guide before you start.'],
  ['URLs say their host', 'Visit https://example.com/a.b?x=1,2 for the details.', 'Visit example dot com for the details.'],
  ['a list marker only at the start of a line', 'Take 3 - 4 of them.\n- one more', 'Take three - four of them. one more'],
];

describe('SpeakableStream', () => {
  it.each(cases)('%s', (_name, text, expected) => {
    expect(tidy(speakable(text))).toBe(expected);
    for (const seed of [1, 2, 3, 4, 5, 6, 7]) expect(tidy(streamed(text, seed))).toBe(expected);
    // One character at a time, as a slow tokenizer might.
    const stream = new SpeakableStream();
    const out = [...text].map((c) => stream.push(c)).join('') + stream.end();
    expect(tidy(out)).toBe(expected);
  });

  it('lets each word out once the next one has begun, holding back only what a rule needs', () => {
    const stream = new SpeakableStream();
    expect(stream.push('Hello')).toBe(''); // the word may go on
    expect(stream.push(' there,')).toBe('Hello ');
    expect(stream.push(' it is 5')).toBe('there, it is ');
    expect(stream.push(' ')).toBe(''); // "5" may be "5 km" or "5 %"
    expect(stream.push('km away')).toBe('five kilometers ');
    expect(stream.push(' [the')).toBe('away ');
    expect(stream.push(' map](http://x.io/a b')).toBe(''); // the link's text is known only once it closes
    expect(stream.push(') now')).toBe('the map ');
    expect(stream.end()).toBe('now');
  });

  it('an unclosed bracket is not held for ever', () => {
    const stream = new SpeakableStream();
    expect(stream.push('[a short aside ')).toBe('');
    const words = Array.from({ length: 80 }, () => 'word').join(' '); // 400 characters
    expect(stream.push(`${words} `)).toMatch(/^\[a short aside word word/);
  });

  it('nothing speakable gives nothing', () => {
    expect(speakable('🎉🎉 --- **')).toBe('');
    expect(speakable('```\ncode only\n```')).toBe('');
  });
});
