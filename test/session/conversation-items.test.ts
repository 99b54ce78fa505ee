/**
 * The session core's item bookkeeping on its own (no engines): where items go, which edits make the
 * model's history be rebuilt and what the rebuild holds, and how a spoken item is cut by time.
 */
import { describe, expect, it } from 'vitest';
import { ConversationItems, type ConversationItem } from '../../src/session/conversation-items.js';

const RATE = 24_000;
const message = (id: string, role: ConversationItem['role'], text: string): ConversationItem => ({ id, role, modality: 'text', text, status: 'completed', audioMs: 0 });
const ids = (items: ConversationItems) => items.list.map((i) => i.id);

describe('conversation items', () => {
  it('a user message at the end waits for the next answer; one put anywhere else makes the history be rebuilt without the waiting input', () => {
    const items = new ConversationItems([{ role: 'system', content: 'Be brief.' }], RATE);
    expect(items.list.map((i) => [i.role, i.text])).toEqual([['system', 'Be brief.']]);
    expect(items.addUserTurn(message('u1', 'user', 'Hello.'))).toEqual({ previousItemId: items.list[0]!.id });
    expect(items.addMessage(message('u2', 'user', 'Are you there?'), undefined)).toEqual({ previousItemId: 'u1' });
    expect(items.hasPendingInput).toBe(true);
    expect(items.historyDirty).toBe(false);
    expect(items.takePendingInput()).toEqual({ text: 'Hello.\nAre you there?', rebuiltHistory: null });
    expect(items.hasPendingInput).toBe(false);

    expect(items.addMessage(message('a0', 'assistant', 'Earlier.'), null)).toEqual({ previousItemId: null });
    expect(items.historyDirty).toBe(true);
    items.addUserTurn(message('u3', 'user', 'Next.'));
    const { text, rebuiltHistory } = items.takePendingInput();
    expect(text).toBe('Next.');
    expect(rebuiltHistory).toEqual([
      { role: 'assistant', content: 'Earlier.' },
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hello.' },
      { role: 'user', content: 'Are you there?' },
    ]);
    expect(items.historyDirty).toBe(false);
  });

  it('refuses a taken id or an unknown previous item; deleting waiting input needs no rebuild, deleting anything else does', () => {
    const items = new ConversationItems([], RATE);
    items.addUserTurn(message('u1', 'user', 'Hi.'));
    expect(items.addMessage(message('u1', 'user', 'Again.'), undefined)).toBe('an item with id "u1" already exists');
    expect(items.addMessage(message('u2', 'user', 'Hm.'), 'nope')).toBe('previous_item_id "nope" is not in the conversation');
    expect(items.delete('nope')).toBe(false);
    expect(items.delete('u1')).toBe(true);
    expect(items.hasPendingInput).toBe(false);
    expect(items.historyDirty).toBe(false);
    items.addMessage(message('s1', 'system', 'Rules.'), undefined);
    items.takePendingInput();
    expect(items.delete('s1')).toBe(true);
    expect(items.historyDirty).toBe(true);
  });

  it("an answer's items stay together after what they answer, also when the client adds one meanwhile; at the end once that item is gone", () => {
    const items = new ConversationItems([], RATE);
    items.addUserTurn(message('u1', 'user', 'Weather?'));
    items.addMessage(message('u2', 'user', 'In Paris.'), undefined);
    expect(items.placeAfter(message('a1', 'assistant', 'Let me check.'), 'u1')).toEqual({ previousItemId: 'u1' });
    const call: ConversationItem = { ...message('c1', 'assistant', ''), functionCall: { callId: 'call_1', name: 'get_weather', arguments: '{}' } };
    expect(items.placeAfter(call, 'a1')).toEqual({ previousItemId: 'a1' });
    expect(ids(items)).toEqual(['u1', 'a1', 'c1', 'u2']);
    items.delete('c1');
    expect(items.placeAfter(message('a2', 'assistant', 'Sunny.'), 'c1')).toEqual({ previousItemId: 'u2' });
  });

  it('a function output needs its call, once; the rebuilt history joins each call to the assistant message before it, with its output', () => {
    const items = new ConversationItems([], RATE);
    const output = (id: string, callId: string) => ({ ...message(id, 'user', ''), functionOutput: { callId, output: '{"forecast":"sunny"}' } });
    expect(items.addFunctionOutput(output('o1', 'call_1'), undefined)).toBe('no function call with call_id "call_1" is in the conversation');
    items.addUserTurn(message('u1', 'user', 'Weather?'));
    items.takePendingInput();
    items.placeAfter(message('a1', 'assistant', 'Let me check.'), 'u1');
    items.placeAfter({ ...message('c1', 'assistant', ''), functionCall: { callId: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' } }, 'a1');
    expect(items.addFunctionOutput(output('o1', 'call_1'), undefined)).toEqual({ previousItemId: 'c1' });
    expect(items.historyDirty).toBe(false);
    expect(items.addFunctionOutput(output('o2', 'call_1'), undefined)).toBe('the function call "call_1" has an output already');
    items.markHistoryDirty();
    expect(items.takePendingInput().rebuiltHistory).toEqual([
      { role: 'user', content: 'Weather?' },
      { role: 'assistant', content: 'Let me check.', functionCalls: [{ name: 'get_weather', arguments: '{"city":"Paris"}', output: '{"forecast":"sunny"}' }] },
    ]);
  });

  it('a completed spoken item is cut to its share of words by time, clamped to its audio', () => {
    const items = new ConversationItems([], RATE);
    const spoken: ConversationItem = { ...message('a1', 'assistant', 'One two. Three four five six.'), modality: 'audio' };
    items.placeAfter(spoken, null);
    expect(items.truncate('a1', 500)).toBe(0); // not spoken: nothing to cut by
    items.startSpeech(spoken);
    items.addSpeech(spoken, 'One two.', RATE / 2);
    items.addSpeech(spoken, 'One two. Three four', RATE / 2);
    items.addSpeech(spoken, 'One two. Three four five six.', RATE);
    expect(spoken.audioMs).toBe(2_000);
    expect(items.truncate('a1', 1_000)).toBe(1_000);
    expect(spoken.text).toBe('One two. Three');
    expect(items.historyDirty).toBe(true);
    expect(items.truncate('a1', 99_000)).toBe(2_000);
    expect(spoken.text).toBe('One two. Three four five six.');
    expect(items.truncate('a1', 0)).toBe(0);
    expect(spoken.text).toBe('');
    expect(items.truncate('none', 10)).toBeNull();
  });

  it('an answer cut while its TTS had text far ahead of the speech keeps no more words than a speaking rate allows', () => {
    const items = new ConversationItems([], RATE);
    const spoken: ConversationItem = { ...message('a1', 'assistant', ''), modality: 'audio', status: 'in_progress' };
    items.placeAfter(spoken, null);
    items.startSpeech(spoken);
    // The LLM wrote 40 words; the TTS has made one second of audio so far.
    const text = Array.from({ length: 40 }, (_, i) => `w${i}`).join(' ');
    items.addSpeech(spoken, text, RATE);
    items.cutToHeard(spoken, RATE / 2);
    expect(spoken.text).toBe('w0'); // half a second: 1.65 words, not half of the 40 given
    items.cutToHeard(spoken, RATE);
    expect(spoken.text).toBe('w0 w1 w2');
  });
});
