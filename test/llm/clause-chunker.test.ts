/**
 * The clause chunker on exact text streamed by an LLM double: where it cuts, what it never cuts,
 * and what it removes. Every case is also checked against random delta splits, since the LLM may
 * split text anywhere (inside "**", "```", "3.5").
 */
import { describe, expect, it } from 'vitest';
import { chunkClauses, ClauseChunker, cleanForSpeech } from '../../src/llm/clause-chunker.js';
import { ScriptedLlmDouble } from '../doubles/scripted-llm-double.js';

async function chunksOf(text: string, options = {}, deltaChars = 3): Promise<string[]> {
  const llm = new ScriptedLlmDouble({ replies: [text], deltaChars });
  const conversation = await llm.openConversation();
  const out: string[] = [];
  for await (const chunk of chunkClauses(conversation.reply('go', { signal: new AbortController().signal }), options)) out.push(chunk);
  return out;
}

function chunkWithRandomSplits(text: string, seed: number): string[] {
  let state = seed;
  const random = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const chunker = new ClauseChunker();
  const out: string[] = [];
  for (let i = 0; i < text.length; ) {
    const size = 1 + Math.floor(random() * 7);
    out.push(...chunker.push(text.slice(i, i + size)));
    i += size;
  }
  return [...out, ...chunker.flush()];
}

const cases: [string, string, string[]][] = [
  [
    'first piece at the first clause boundary with enough words, then by sentence',
    'Well, I think that Paris, the capital of France, is lovely. It has great food. And wine!',
    ['Well, I think that Paris,', 'the capital of France, is lovely.', 'It has great food.', 'And wine!'],
  ],
  [
    'numbers like 3.5 and 1,000 are never split',
    'It costs 3.5 dollars, or about 1,000 yen in total. That is 2.75 times more than before.',
    ['It costs 3.5 dollars,', 'or about 1,000 yen in total.', 'That is 2.75 times more than before.'],
  ],
  [
    'abbreviations like Dr. and e.g. do not end a sentence',
    'Dr. Smith says that e.g. apples are good. Mr. Jones and the U.S. team agree with her.',
    ['Dr. Smith says that e.g. apples are good.', 'Mr. Jones and the U.S. team agree with her.'],
  ],
  [
    'URLs are kept whole',
    'Visit https://example.com/a.b?x=1,2 for the details, it is great. Thanks a lot for asking me.',
    ['Visit https://example.com/a.b?x=1,2 for the details,', 'it is great. Thanks a lot for asking me.'],
  ],
  [
    'markdown, lists and code blocks are removed',
    '**Sure thing!** Here are my two options:\n\n1. **Paris** is nice.\n2. *Rome* is too.\n```js\nconsole.log("no");\n```\nEnjoy your trip, my dear friend.',
    ['Sure thing! Here are my two options:', 'Paris is nice. Rome is too.', 'Enjoy your trip, my dear friend.'],
  ],
  [
    'emoji are removed',
    'That is really great 🎉😀! Let me help you with that today 👍🏽.',
    ['That is really great!', 'Let me help you with that today.'],
  ],
  [
    'a long first clause is cut after firstChunkMaxWords words',
    'one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen.',
    ['one two three four five six seven eight nine ten eleven twelve', 'thirteen fourteen fifteen.'],
  ],
  [
    'short sentences are merged until a piece has four words',
    'Yes. Sure. I can do that for you. Okay.',
    ['Yes. Sure. I can do that for you.', 'Okay.'],
  ],
  ['a dash with spaces is a clause boundary', 'The answer is simple — just ask her again, and wait.', ['The answer is simple —', 'just ask her again, and wait.']],
  ['links keep their text', 'Read [the guide](https://x.io/guide) before you start the engine today.', ['Read the guide before you start the engine today.']],
];

describe('clause chunker', () => {
  it.each(cases)('%s', async (_name, text, expected) => {
    expect(await chunksOf(text)).toEqual(expected);
    for (const seed of [1, 2, 3, 4, 5]) expect(chunkWithRandomSplits(text, seed)).toEqual(expected);
    expect(await chunksOf(text, {}, 1)).toEqual(expected);
  });

  it('emits the first piece as soon as its boundary is confirmed, before the rest of the reply exists', () => {
    const chunker = new ClauseChunker();
    expect(chunker.push('Well, I think that Paris')).toEqual([]);
    expect(chunker.push(',')).toEqual([]); // the next character may still be a digit
    expect(chunker.push(' the')).toEqual(['Well, I think that Paris,']);
  });

  it('splits an overlong later sentence at its last clause boundary', () => {
    const chunker = new ClauseChunker({ maxChunkWords: 10 });
    const long = 'First we go, and then. Alpha beta gamma delta, epsilon zeta eta theta iota kappa lambda mu nu.';
    expect([...chunker.push(long), ...chunker.flush()]).toEqual(['First we go, and then.', 'Alpha beta gamma delta,', 'epsilon zeta eta theta iota kappa lambda mu nu.']);
  });

  it('cleans stray markdown and symbols', () => {
    expect(cleanForSpeech('## Title\n> quote with `code` and __bold__ | cell |')).toBe('Title quote with code and bold, cell');
    expect(cleanForSpeech('🎉🎉')).toBe('');
    expect(cleanForSpeech('---')).toBe('');
  });
});
