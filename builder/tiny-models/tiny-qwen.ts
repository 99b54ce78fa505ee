/**
 * A tiny Qwen2-architecture GGUF that node-llama-cpp really loads and streams from, with
 * Qwen2.5's chat template so it gets the same chat wrapper as the real model.
 *
 * The weights are hand-set so the reply is known. The feed-forward blocks add nothing, so the
 * last token mostly picks the next one (a bigram chain through one-hot embeddings). One attention
 * layer looks back over the whole context for two markers the Qwen chat wrapper writes: `<tools>`
 * (functions are offered) and `<tool_response>` (a function result came back). It adds what it
 * finds to the residual stream only at tokens outside the chains, which is where a reply starts:
 * - no functions offered: the assistant says TINY_QWEN_REPLY and then <|im_end|> (the "endless"
 *   variant repeats it forever instead, for tests of token limits and abort);
 * - functions offered: it calls TINY_QWEN_TOOL_CALL in Qwen2.5's `<tool_call>` format;
 * - after a function result: it says TINY_QWEN_TOOL_ANSWER.
 * The `badToolCall` variant calls with TINY_QWEN_BAD_TOOL_CALL, which has the right shape for the
 * grammar but breaks TINY_QWEN_WEATHER_TOOL's range (days 1 to 7). The `textBeforeCall` variant
 * says TINY_QWEN_CALL_PREAMBLE first and then calls, as real models often do.
 *
 * Inside a function call node-llama-cpp re-tokenizes the call's fixed text (`<tool_call>\n{"name": "`,
 * then `", "arguments": `) and grammar-constrains the name and the arguments, so the chain is keyed
 * on the last token of each fixed part (`"` and a space) rather than on what the model emitted.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { encodeGguf, type GgufTensor } from './gguf-writer.js';
import { QWEN25_CHAT_TEMPLATE } from './qwen-chat-template.js';

export const TINY_QWEN_REPLY = 'Hello world, this is a tiny model. It always says the same thing!';
const REPLY_WORDS = ['Hello', ' world', ',', ' this', ' is', ' a', ' tiny', ' model', '.', ' It', ' always', ' says', ' the', ' same', ' thing', '!'];

export const TINY_QWEN_TOOL_ANSWER = 'Paris will be sunny and warm tomorrow.';
const ANSWER_WORDS = ['Paris', ' will', ' be', ' sunny', ' and', ' warm', ' tomorrow.'];

/** What the textBeforeCall variant says before it calls the tool. */
export const TINY_QWEN_CALL_PREAMBLE = 'Let me check.';
const PREAMBLE_WORDS = ['Let', ' me', ' check.'];

/** The one tool the tiny model knows how to call. */
export const TINY_QWEN_WEATHER_TOOL = {
  name: 'get_weather',
  description: 'The weather forecast for a city.',
  parameters: {
    type: 'object',
    properties: {
      city: { type: 'string', description: 'The city name' },
      days: { type: 'integer', minimum: 1, maximum: 7, description: 'How many days ahead, 1 to 7' },
    },
    required: ['city', 'days'],
    additionalProperties: false,
  },
} as const;
export const TINY_QWEN_TOOL_CALL = { name: 'get_weather', arguments: { city: 'Paris', days: 1 } } as const;
export const TINY_QWEN_BAD_TOOL_CALL = { name: 'get_weather', arguments: { city: 'Paris', days: 30 } } as const;

const N_EMBD = 64;
const N_HEAD = 4;
const HEAD_DIM = N_EMBD / N_HEAD;
const N_FF = 128;
const N_LAYER = 2;
const CONTEXT_LENGTH = 4096;
const CONTROL_TOKENS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];
/** Plain-text tags that are single (user-defined) tokens, as `<tool_call>` and `<tool_response>` are in Qwen2.5. */
const TAG_TOKENS = ['<tool_call>', '</tool_call>', '<tool_response>', '</tool_response>', '<tools>', '</tools>'];
const TOKEN_TYPE = { normal: 1, control: 3, userDefined: 4 };

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
const byteChars = (text: string) => [...Buffer.from(text, 'utf8')].map((b) => BYTE_CHARS[b]!);

interface Vocab {
  tokens: string[];
  types: number[];
  merges: string[];
  id: Map<string, number>;
}

function buildVocab(words: readonly string[]): Vocab {
  const tokens = [...BYTE_CHARS];
  const merges: string[] = [];
  const id = new Map(tokens.map((t, i) => [t, i]));
  const add = (token: string) => {
    if (!id.has(token)) {
      id.set(token, tokens.length);
      tokens.push(token);
    }
  };
  // Each word, merged one byte-character at a time, so the BPE tables stay consistent.
  for (const word of words) {
    const chars = byteChars(word);
    let prefix = chars[0]!;
    for (const char of chars.slice(1)) {
      if (!id.has(prefix + char)) merges.push(`${prefix} ${char}`);
      prefix += char;
      add(prefix);
    }
  }
  const types = tokens.map(() => TOKEN_TYPE.normal);
  for (const special of CONTROL_TOKENS) {
    add(special);
    types[id.get(special)!] = TOKEN_TYPE.control;
  }
  for (const tag of TAG_TOKENS) {
    add(tag);
    types[id.get(tag)!] = TOKEN_TYPE.userDefined;
  }
  return { tokens, types, merges, id };
}

function tokenOf(vocab: Vocab, text: string): number {
  const id = vocab.id.get(TAG_TOKENS.includes(text) || CONTROL_TOKENS.includes(text) ? text : byteChars(text).join(''));
  if (id === undefined) throw new Error(`tiny-qwen: no token for ${JSON.stringify(text)}`);
  return id;
}

export interface TinyQwenOptions {
  /** Repeat the plain reply forever instead of ending it. */
  endless?: boolean;
  /** Call the tool with arguments that break its schema's range. */
  badToolCall?: boolean;
  /** Say TINY_QWEN_CALL_PREAMBLE before calling the tool. */
  textBeforeCall?: boolean;
}

export function tinyQwenGguf(options: TinyQwenOptions = {}): Buffer {
  const call = options.badToolCall ? TINY_QWEN_BAD_TOOL_CALL : TINY_QWEN_TOOL_CALL;
  const callOpening = '\n{"name": "';
  const callArguments = JSON.stringify(call.arguments).replaceAll('":', '": ').replaceAll(',"', ', "');
  const preamble = options.textBeforeCall ? PREAMBLE_WORDS : [];
  const vocab = buildVocab([...REPLY_WORDS, ...ANSWER_WORDS, ...preamble, callOpening, call.name, callArguments]);
  const nVocab = vocab.tokens.length;
  const token = (text: string) => tokenOf(vocab, text);
  const imEnd = token('<|im_end|>');
  const newline = token('\n');

  // Residual dimensions: 0 = "any other token" (where a reply starts); one per token that leads
  // somewhere; one per marker token; one per marker found by attention.
  const next = new Map<number, number>();
  const lead = (from: number, to: number) => {
    if (next.has(from)) throw new Error(`tiny-qwen: token ${vocab.tokens[from]} already leads somewhere`);
    next.set(from, to);
  };
  const chain = (words: readonly string[], after: number) => {
    const ids = words.map(token);
    ids.forEach((id, k) => lead(id, k + 1 < ids.length ? ids[k + 1]! : after));
    return ids;
  };
  const reply = chain(REPLY_WORDS, options.endless ? token(REPLY_WORDS[0]!) : imEnd);
  const answer = chain(ANSWER_WORDS, imEnd);
  const callStart = token('<tool_call>');
  // With textBeforeCall, offered tools start the preamble, whose last word leads into the call.
  const callLead = preamble.length > 0 ? chain(preamble, callStart)[0]! : callStart;
  lead(callStart, token(callOpening));
  lead(token('"'), token(call.name)); // last token of the re-tokenized `<tool_call>\n{"name": "`
  lead(token(call.name), newline); // the name grammar ends with a newline
  lead(token(' '), token(callArguments)); // last token of the re-tokenized `", "arguments": `
  lead(token(callArguments), newline); // the arguments grammar ends with newlines
  lead(token('</tool_call>'), imEnd);

  const dims = new Map([...next.keys()].map((id, k) => [id, k + 1]));
  const toolsMarker = dims.size + 1;
  const resultMarker = dims.size + 2;
  const toolsFound = dims.size + 3;
  const resultFound = dims.size + 4;
  if (resultFound >= N_EMBD) throw new Error('tiny-qwen: too many chain tokens for the embedding size');

  const embeddings = new Float32Array(N_EMBD * nVocab);
  for (let t = 0; t < nVocab; t++) embeddings[t * N_EMBD + (dims.get(t) ?? 0)] = 1;
  const setEmbedding = (id: number, dim: number) => {
    embeddings.fill(0, id * N_EMBD, (id + 1) * N_EMBD);
    embeddings[id * N_EMBD + dim] = 1;
  };
  setEmbedding(token('<tools>'), toolsMarker);
  setEmbedding(token('<tool_response>'), resultMarker);

  // Output row of token v scores it after the tokens whose dimension is set in that row. A found
  // result outweighs offered tools, which outweigh the plain reply.
  const output = new Float32Array(N_EMBD * nVocab);
  const follow = (dimension: number, to: number, weight = 10) => (output[to * N_EMBD + dimension] = weight);
  follow(0, reply[0]!);
  for (const [from, to] of next) follow(dims.get(from)!, to);
  follow(toolsFound, callLead, 20);
  follow(resultFound, answer[0]!, 30);

  // Attention in layer 0: heads 0 and 1 look for the tools and result markers. The query is set
  // only at "other" tokens; the key only at the marker. Both sit in each head's last dimension,
  // which RoPE turns slowest (1e6^(-14/16) rad per position), so the score does not depend on
  // distance: (1.5 * 8)^2 / sqrt(16) = 36, the marker takes all the attention when present and
  // none is paid (every score 0, every other value 0) when absent. Its value, 1, lands in the
  // "found" dimension. At chain tokens the query is 0, so attention spreads evenly and adds only
  // markers/context-length, far too little to move the chain.
  const rmsScale = Math.sqrt(N_EMBD); // RMSNorm of a one-hot vector
  const q = new Float32Array(N_EMBD * N_EMBD);
  const k = new Float32Array(N_EMBD * N_EMBD);
  const v = new Float32Array(N_EMBD * N_EMBD);
  const o = new Float32Array(N_EMBD * N_EMBD);
  const at = (out: number, input: number) => out * N_EMBD + input;
  [toolsMarker, resultMarker].forEach((marker, head) => {
    const slow = head * HEAD_DIM + HEAD_DIM - 1;
    q[at(slow, 0)] = 1.5;
    k[at(slow, marker)] = 1.5;
    v[at(head * HEAD_DIM, marker)] = 1 / rmsScale;
    o[at(head === 0 ? toolsFound : resultFound, head * HEAD_DIM)] = 1;
  });

  const zeros = (...d: number[]) => ({ dims: d, data: new Float32Array(d.reduce((a, b) => a * b, 1)) });
  const ones = (n: number) => ({ dims: [n], data: new Float32Array(n).fill(1) });
  const square = (data: Float32Array) => ({ dims: [N_EMBD, N_EMBD], data });
  const tensors: GgufTensor[] = [
    { name: 'token_embd.weight', dims: [N_EMBD, nVocab], data: embeddings },
    { name: 'output_norm.weight', ...ones(N_EMBD) },
    { name: 'output.weight', dims: [N_EMBD, nVocab], data: output },
  ];
  for (let layer = 0; layer < N_LAYER; layer++) {
    const p = `blk.${layer}.`;
    const first = layer === 0;
    tensors.push(
      { name: `${p}attn_norm.weight`, ...ones(N_EMBD) },
      { name: `${p}attn_q.weight`, ...(first ? square(q) : zeros(N_EMBD, N_EMBD)) },
      { name: `${p}attn_q.bias`, ...zeros(N_EMBD) },
      { name: `${p}attn_k.weight`, ...(first ? square(k) : zeros(N_EMBD, N_EMBD)) },
      { name: `${p}attn_k.bias`, ...zeros(N_EMBD) },
      { name: `${p}attn_v.weight`, ...(first ? square(v) : zeros(N_EMBD, N_EMBD)) },
      { name: `${p}attn_v.bias`, ...zeros(N_EMBD) },
      { name: `${p}attn_output.weight`, ...(first ? square(o) : zeros(N_EMBD, N_EMBD)) },
      { name: `${p}ffn_norm.weight`, ...ones(N_EMBD) },
      { name: `${p}ffn_gate.weight`, ...zeros(N_EMBD, N_FF) },
      { name: `${p}ffn_up.weight`, ...zeros(N_EMBD, N_FF) },
      { name: `${p}ffn_down.weight`, ...zeros(N_FF, N_EMBD) },
    );
  }
  const name = ['tiny-qwen2', options.endless ? 'endless' : '', options.badToolCall ? 'bad-tool-call' : '', options.textBeforeCall ? 'text-before-call' : ''].filter(Boolean).join('-');
  return encodeGguf(
    {
      'general.architecture': { str: 'qwen2' },
      'general.name': { str: `${name} (test model)` },
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
      'tokenizer.ggml.padding_token_id': { u32: token('<|endoftext|>') },
      'tokenizer.ggml.bos_token_id': { u32: token('<|endoftext|>') },
      'tokenizer.ggml.add_bos_token': { bool: false },
      'tokenizer.chat_template': { str: QWEN25_CHAT_TEMPLATE },
    },
    tensors,
  );
}

export async function writeTinyQwen(path: string, options: TinyQwenOptions = {}): Promise<string> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, tinyQwenGguf(options));
  return path;
}
