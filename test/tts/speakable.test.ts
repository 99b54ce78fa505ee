/** Text is rewritten into words before it reaches VibeVoice, which does not read digits or symbols. */
import { describe, expect, it } from 'vitest';
import { integerToWords, toSpeakable } from '../../src/tts/speakable.js';

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
