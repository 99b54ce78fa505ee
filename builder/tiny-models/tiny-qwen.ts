/**
 * A tiny Qwen2-architecture GGUF that node-llama-cpp really loads and streams from, with
 * Qwen2.5's chat template so it gets the same chat wrapper as the real model.
 *
 * The weights are hand-set so the reply is known: every attention and feed-forward block adds
 * nothing, so the last token alone picks the next one (a bigram chain through one-hot embeddings).
 * Whatever the prompt, the assistant says TINY_QWEN_REPLY and then <|im_end|>; the "endless" variant
 * repeats the reply forever instead, for tests of token limits and abort.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { encodeGguf, type GgufTensor } from './gguf-writer.js';
import { QWEN25_CHAT_TEMPLATE } from './qwen-chat-template.js';

export const TINY_QWEN_REPLY = 'Hello world, this is a tiny model. It always says the same thing!';
const REPLY_WORDS = ['Hello', ' world', ',', ' this', ' is', ' a', ' tiny', ' model', '.', ' It', ' always', ' says', ' the', ' same', ' thing', '!'];

const N_EMBD = 64;
const N_HEAD = 4;
const N_FF = 128;
const N_LAYER = 2;
const CONTEXT_LENGTH = 4096;
const SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];

/** GPT-2's byte-to-unicode table: each byte gets a printable character. */
function bytesToUnicode(): string[] {
  const table: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    table[b] = String.fromCodePoint(printable ? b : 256 + extra++);
  }
  return table;
}

const BYTE_CHARS = bytesToUnicode();

interface Vocab {
  tokens: string[];
  types: number[];
  merges: string[];
  id: Map<string, number>;
}

function buildVocab(): Vocab {
  const tokens = [...BYTE_CHARS];
  const merges: string[] = [];
  const id = new Map(tokens.map((t, i) => [t, i]));
  const add = (token: string) => {
    if (!id.has(token)) {
      id.set(token, tokens.length);
      tokens.push(token);
    }
  };
  // Each reply word, merged one byte-character at a time, so the BPE tables stay consistent.
  for (const word of REPLY_WORDS) {
    const chars = [...Buffer.from(word, 'utf8')].map((b) => BYTE_CHARS[b]!);
    let prefix = chars[0]!;
    for (const char of chars.slice(1)) {
      merges.push(`${prefix} ${char}`);
      prefix += char;
      add(prefix);
    }
  }
  const types = tokens.map(() => 1);
  for (const special of SPECIALS) {
    add(special);
    types[id.get(special)!] = 3;
  }
  return { tokens, types, merges, id };
}

function encodeWord(vocab: Vocab, word: string): number {
  const chars = [...Buffer.from(word, 'utf8')].map((b) => BYTE_CHARS[b]!).join('');
  const id = vocab.id.get(chars);
  if (id === undefined) throw new Error(`tiny-qwen: no token for ${JSON.stringify(word)}`);
  return id;
}

export function tinyQwenGguf(options: { endless?: boolean } = {}): Buffer {
  const vocab = buildVocab();
  const nVocab = vocab.tokens.length;
  const chain = REPLY_WORDS.map((w) => encodeWord(vocab, w));
  const imEnd = vocab.id.get('<|im_end|>')!;

  // Embedding dimension 0 stands for "any other token"; dimension k+1 for the k-th reply word.
  const embeddings = new Float32Array(N_EMBD * nVocab);
  for (let t = 0; t < nVocab; t++) embeddings[t * N_EMBD] = 1;
  chain.forEach((token, k) => {
    embeddings[token * N_EMBD] = 0;
    embeddings[token * N_EMBD + k + 1] = 1;
  });
  // Output row of token v scores it after the tokens whose dimension is set in that row.
  const output = new Float32Array(N_EMBD * nVocab);
  const follow = (dimension: number, next: number) => (output[next * N_EMBD + dimension] = 10);
  follow(0, chain[0]!);
  chain.forEach((_, k) => follow(k + 1, k + 1 < chain.length ? chain[k + 1]! : options.endless ? chain[0]! : imEnd));

  const zeros = (...dims: number[]) => ({ dims, data: new Float32Array(dims.reduce((a, b) => a * b, 1)) });
  const ones = (n: number) => ({ dims: [n], data: new Float32Array(n).fill(1) });
  const tensors: GgufTensor[] = [
    { name: 'token_embd.weight', dims: [N_EMBD, nVocab], data: embeddings },
    { name: 'output_norm.weight', ...ones(N_EMBD) },
    { name: 'output.weight', dims: [N_EMBD, nVocab], data: output },
  ];
  for (let layer = 0; layer < N_LAYER; layer++) {
    const p = `blk.${layer}.`;
    tensors.push(
      { name: `${p}attn_norm.weight`, ...ones(N_EMBD) },
      { name: `${p}attn_q.weight`, ...zeros(N_EMBD, N_EMBD) },
      { name: `${p}attn_q.bias`, ...zeros(N_EMBD) },
      { name: `${p}attn_k.weight`, ...zeros(N_EMBD, N_EMBD) },
      { name: `${p}attn_k.bias`, ...zeros(N_EMBD) },
      { name: `${p}attn_v.weight`, ...zeros(N_EMBD, N_EMBD) },
      { name: `${p}attn_v.bias`, ...zeros(N_EMBD) },
      { name: `${p}attn_output.weight`, ...zeros(N_EMBD, N_EMBD) },
      { name: `${p}ffn_norm.weight`, ...ones(N_EMBD) },
      { name: `${p}ffn_gate.weight`, ...zeros(N_EMBD, N_FF) },
      { name: `${p}ffn_up.weight`, ...zeros(N_EMBD, N_FF) },
      { name: `${p}ffn_down.weight`, ...zeros(N_FF, N_EMBD) },
    );
  }
  return encodeGguf(
    {
      'general.architecture': { str: 'qwen2' },
      'general.name': { str: options.endless ? 'tiny-qwen2-endless (test model)' : 'tiny-qwen2 (test model)' },
      'general.alignment': { u32: 32 },
      'qwen2.context_length': { u32: CONTEXT_LENGTH },
      'qwen2.embedding_length': { u32: N_EMBD },
      'qwen2.block_count': { u32: N_LAYER },
      'qwen2.feed_forward_length': { u32: N_FF },
      'qwen2.attention.head_count': { u32: N_HEAD },
      'qwen2.attention.head_count_kv': { u32: N_HEAD },
      'qwen2.rope.freq_base': { f32: 1_000_000 },
      'qwen2.attention.layer_norm_rms_epsilon': { f32: 1e-6 },
      'tokenizer.ggml.model': { str: 'gpt2' },
      'tokenizer.ggml.pre': { str: 'qwen2' },
      'tokenizer.ggml.tokens': { strings: vocab.tokens },
      'tokenizer.ggml.token_type': { i32s: vocab.types },
      'tokenizer.ggml.merges': { strings: vocab.merges },
      'tokenizer.ggml.eos_token_id': { u32: imEnd },
      'tokenizer.ggml.padding_token_id': { u32: vocab.id.get('<|endoftext|>')! },
      'tokenizer.ggml.bos_token_id': { u32: vocab.id.get('<|endoftext|>')! },
      'tokenizer.ggml.add_bos_token': { bool: false },
      'tokenizer.chat_template': { str: QWEN25_CHAT_TEMPLATE },
    },
    tensors,
  );
}

export async function writeTinyQwen(path: string, options: { endless?: boolean } = {}): Promise<string> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, tinyQwenGguf(options));
  return path;
}
