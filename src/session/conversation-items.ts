/**
 * The conversation as the session core keeps it: its items in order, what of each assistant item
 * was spoken (so a cut or a truncation can keep what was heard), the user input no answer has taken
 * up yet, whether the model's history still matches the items, and whether one more fits the session's
 * size limits. When a client edits the
 * conversation (inserts, deletes, truncates) the model's history is rebuilt from the items before
 * the next answer, not edited in place.
 *
 * Pure bookkeeping: nothing here talks to the LLM or to a client. The core applies what it returns.
 */
import type { ChatMessage } from '../llm/llm.js';
import { MAX_ITEM_TEXT_CHARS, type ItemRefused, type SessionLimits } from './core-types.js';
import { newId } from './ids.js';

/**
 * One message of the conversation as the core keeps it: what the model sees (`text`) and how it
 * came to be. An assistant item that was cut holds the text as far as it was heard.
 */
export interface ConversationItem {
  id: string;
  role: 'user' | 'assistant' | 'system';
  /** Spoken (a user's audio, an assistant's speech) or text only. */
  modality: 'audio' | 'text';
  /** null while a user's speech is still being transcribed. */
  text: string | null;
  status: 'in_progress' | 'completed' | 'incomplete';
  /** Length of the assistant's audio that exists (sent or not), ms; 0 for text. */
  audioMs: number;
  /** A function call the assistant made (role assistant, no text). */
  functionCall?: { callId: string; name: string; arguments: string };
  /** The output of a call, from the client (role user, no text). */
  functionOutput?: { callId: string; output: string };
}

/** A spoken assistant item: its text so far and the length of its audio, what truncation cuts by. */
type Spoken = { text: string; samples: number };

/**
 * About 0.3 s of speech per English word. A cut answer's TTS was given its text ahead of the speech
 * (the engine reads text windows before it speaks them), so the heard share of the words given is an
 * overestimate: words heard are bounded by this rate.
 */
const MAX_WORDS_PER_SECOND = 3.3;

/** Where a new item went: the id of the item before it (null: first). */
export type Placed = { previousItemId: string | null };

export class ConversationItems {
  readonly #items: ConversationItem[] = [];
  readonly #spoken = new Map<string, Spoken>();
  /** Ids of user items heard or typed that no answer has taken up yet. */
  #pendingInput: string[] = [];
  /** Items edited out of the model's order (deleted, truncated, inserted): the model's history is rebuilt before the next answer. */
  #historyDirty = false;
  readonly #sampleRate: number;

  /** `history`: what the model's conversation was opened with (it is part of any rebuild); `sampleRate`: that of the assistant's audio. */
  constructor(history: readonly ChatMessage[], sampleRate: number) {
    this.#sampleRate = sampleRate;
    for (const message of history) {
      this.#items.push({ id: newId('item'), role: message.role, modality: 'text', text: message.content, status: 'completed', audioMs: 0 });
    }
  }

  /** The conversation as it stands, in order. */
  get list(): readonly Readonly<ConversationItem>[] {
    return this.#items;
  }

  /** Characters of text the items hold (messages, call arguments, call outputs). */
  get textChars(): number {
    let chars = 0;
    for (const item of this.#items) chars += (item.text?.length ?? 0) + (item.functionCall?.arguments.length ?? 0) + (item.functionOutput?.output.length ?? 0);
    return chars;
  }

  /**
   * Why the conversation cannot take one more item with `chars` characters of text, or null when it
   * can: its size is bounded (items and text), so one client cannot grow the worker's memory at will.
   */
  refusal(chars: number, { maxItems, maxTextChars }: Pick<SessionLimits, 'maxItems' | 'maxTextChars'>): ItemRefused | null {
    if (chars > MAX_ITEM_TEXT_CHARS) return { refused: 'text_too_long', message: `one item may hold at most ${MAX_ITEM_TEXT_CHARS} characters of text; this one has ${chars}` };
    if (this.#items.length >= maxItems) return { refused: 'conversation_full', message: `the conversation holds ${maxItems} items, the most a session may; delete items to add more` };
    const text = this.textChars;
    if (text + chars > maxTextChars) return { refused: 'conversation_full', message: `the conversation would hold ${text + chars} characters of text, more than the ${maxTextChars} a session may; delete items to add more` };
    return null;
  }

  /** The session is over: everything goes. */
  clear(): void {
    this.#items.length = 0;
    this.#spoken.clear();
    this.#pendingInput = [];
  }

  /** User input waits for an answer. */
  get hasPendingInput(): boolean {
    return this.#pendingInput.length > 0;
  }

  /** The model's history no longer matches the items: the next answer rebuilds it. */
  get historyDirty(): boolean {
    return this.#historyDirty;
  }

  /** The model's history went its own way (an answer cut or failed, an output it could not take): rebuild it from the items. */
  markHistoryDirty(): void {
    this.#historyDirty = true;
  }

  /** A user turn (heard or typed) at the end; it waits for the next answer. */
  addUserTurn(item: ConversationItem): Placed {
    this.#items.push(item);
    this.#pendingInput.push(item.id);
    return { previousItemId: this.#items.at(-2)?.id ?? null };
  }

  /**
   * A message the client wrote, after `previousItemId` (undefined: at the end; null: first). A user
   * message at the end waits for the next answer; anything else changes the model's order.
   */
  addMessage(item: ConversationItem, previousItemId: string | null | undefined): Placed | string {
    const at = this.#insert(item, previousItemId);
    if (typeof at === 'string') return at;
    if (item.role === 'user' && at === this.#items.length - 1) this.#pendingInput.push(item.id);
    else this.#historyDirty = true;
    return { previousItemId: this.#items[at - 1]?.id ?? null };
  }

  /** The output of a function call (placed like `addMessage`); why not, when no call has its call id or it has an output already. */
  addFunctionOutput(item: ConversationItem & { functionOutput: { callId: string } }, previousItemId: string | null | undefined): Placed | string {
    const { callId } = item.functionOutput;
    if (!this.#items.some((i) => i.functionCall?.callId === callId)) return `no function call with call_id "${callId}" is in the conversation`;
    if (this.#items.some((i) => i.functionOutput?.callId === callId)) return `the function call "${callId}" has an output already`;
    const at = this.#insert(item, previousItemId);
    if (typeof at === 'string') return at;
    if (at !== this.#items.length - 1) this.#historyDirty = true;
    return { previousItemId: this.#items[at - 1]?.id ?? null };
  }

  /**
   * An answer's own item, right after `afterId` (the answer's previous item, or what it answers):
   * an answer's items stay together in the order they appear, as the model's history has them,
   * even when a client adds items meanwhile. At the end when `afterId` is gone.
   */
  placeAfter(item: ConversationItem, afterId: string | null): Placed {
    const at = this.#insert(item, afterId !== null && !this.#items.some((i) => i.id === afterId) ? undefined : afterId);
    if (typeof at === 'string') throw new Error(`conversation items: ${at}`);
    return { previousItemId: this.#items[at - 1]?.id ?? null };
  }

  /** Removes an item; false when there is none with that id. */
  delete(id: string): boolean {
    const at = this.#items.findIndex((i) => i.id === id);
    if (at < 0) return false;
    this.#items.splice(at, 1);
    this.#spoken.delete(id);
    const pending = this.#pendingInput.indexOf(id);
    if (pending >= 0) this.#pendingInput.splice(pending, 1);
    else this.#historyDirty = true;
    return true;
  }

  /** The item will be spoken: its audio is counted from now on, so it can be cut by time. */
  startSpeech(item: ConversationItem): void {
    this.#spoken.set(item.id, { text: '', samples: 0 });
  }

  /** `samples` more audio of the item, whose text given to the TTS so far is `text`. */
  addSpeech(item: ConversationItem, text: string, samples: number): void {
    const spoken = this.#spoken.get(item.id);
    if (!spoken) return;
    spoken.text = text;
    spoken.samples += samples;
    item.audioMs += (samples / this.#sampleRate) * 1000;
  }

  /**
   * Cuts an assistant item to what was heard in its first `audioEndMs` of audio; the model's history
   * follows. Clamped to the audio that exists; returns the ms it was cut at (0 for an item that was
   * not spoken), or null for no such item.
   */
  truncate(id: string, audioEndMs: number): number | null {
    const item = this.#items.find((i) => i.id === id);
    if (!item) return null;
    if (item.role !== 'assistant' || !this.#spoken.has(id)) return 0;
    const clamped = Math.max(0, Math.min(audioEndMs, item.audioMs));
    this.cutToHeard(item, Math.round((clamped * this.#sampleRate) / 1000));
    return clamped;
  }

  /**
   * Sets a spoken item's text to the words heard in its first `heardSamples`: their share of its words
   * by time (an estimate: the audio does not say where each word is). A completed item's audio speaks
   * all its text; one still in progress or cut was given text ahead of its speech, so its words heard
   * are also bounded by a speaking rate.
   */
  cutToHeard(item: ConversationItem, heardSamples: number): void {
    const spoken = this.#spoken.get(item.id);
    if (!spoken) return;
    const words = spoken.text.split(/\s+/).filter(Boolean);
    const heard = Math.max(0, Math.min(heardSamples, spoken.samples));
    let count = heard >= spoken.samples ? words.length : Math.floor((words.length * heard) / spoken.samples);
    if (item.status !== 'completed') count = Math.min(count, Math.floor((heard / this.#sampleRate) * MAX_WORDS_PER_SECOND));
    item.text = words.slice(0, count).join(' ');
    this.#historyDirty = true;
  }

  /**
   * The user input an answer takes up: the text of the turns waiting for it, and the model's
   * history to restore first when the items were edited (null: the model's history is right).
   */
  takePendingInput(): { text: string; rebuiltHistory: ChatMessage[] | null } {
    const pending = new Set(this.#pendingInput);
    this.#pendingInput = [];
    let rebuiltHistory: ChatMessage[] | null = null;
    if (this.#historyDirty) {
      this.#historyDirty = false;
      rebuiltHistory = modelHistory(this.#items.filter((i) => !pending.has(i.id) && i.status !== 'in_progress'));
    }
    const text = this.#items
      .filter((i) => pending.has(i.id) && i.text)
      .map((i) => i.text)
      .join('\n');
    return { text, rebuiltHistory };
  }

  /** Puts an item after `previousItemId` (undefined: at the end; null: first); its index, or why not. */
  #insert(item: ConversationItem, previousItemId: string | null | undefined): number | string {
    if (this.#items.some((i) => i.id === item.id)) return `an item with id "${item.id}" already exists`;
    let at = this.#items.length;
    if (previousItemId === null) at = 0;
    else if (previousItemId !== undefined) {
      const previous = this.#items.findIndex((i) => i.id === previousItemId);
      if (previous < 0) return `previous_item_id "${previousItemId}" is not in the conversation`;
      at = previous + 1;
    }
    this.#items.splice(at, 0, item);
    return at;
  }
}

/**
 * The model's history for a rebuild: messages with text, each function call joined to the
 * assistant message before it (or an empty one) with its output, if the client sent one.
 */
function modelHistory(items: readonly ConversationItem[]): ChatMessage[] {
  const outputs = new Map(items.flatMap((i) => (i.functionOutput ? [[i.functionOutput.callId, i.functionOutput.output] as const] : [])));
  const messages: ChatMessage[] = [];
  for (const item of items) {
    if (item.functionCall) {
      let last = messages.at(-1);
      if (last?.role !== 'assistant') messages.push((last = { role: 'assistant', content: '' }));
      const { name, arguments: args, callId } = item.functionCall;
      (last.functionCalls ??= []).push({ name, arguments: args, output: outputs.get(callId) ?? null });
    } else if (!item.functionOutput && item.text) {
      messages.push({ role: item.role, content: item.text });
    }
  }
  return messages;
}
