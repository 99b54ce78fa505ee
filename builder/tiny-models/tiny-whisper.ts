/**
 * A tiny Whisper-format model for sherpa-onnx's real Whisper decode path: encoder and decoder ONNX
 * graphs with the metadata sherpa-onnx reads, and a tokens file. The decoder is hand-set: the next
 * token depends only on the previous one (no_timestamps -> " hello" -> " world" -> eot), so any
 * audio decodes to the fixed transcript "hello world". About 10 KB; the words mean nothing.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeOnnxModel } from './onnx-writer.js';

export const TINY_WHISPER_TRANSCRIPT = 'hello world';

const N_MELS = 80;
const N_TEXT_LAYER = 1;
const N_TEXT_CTX = 64;
const N_TEXT_STATE = 4;

/** Token ids: specials first, then the words the decoder says. */
const TOKENS = ['<|endoftext|>', '<|startoftranscript|>', '<|en|>', '<|translate|>', '<|transcribe|>', '<|nospeech|>', '<|notimestamps|>', ' hello', ' world', ' '];
const EOT = 0;
const SOT = 1;
const NO_TIMESTAMPS = 6;
const NEXT_TOKEN: Record<number, number> = { [NO_TIMESTAMPS]: 7, 7: 8, 8: EOT };

export interface TinyWhisperFiles {
  encoder: string;
  decoder: string;
  tokens: string;
}

export const TINY_WHISPER_FILES = { encoder: 'tiny-encoder.onnx', decoder: 'tiny-decoder.onnx', tokens: 'tiny-tokens.txt' } as const;

export function tinyWhisperMetadata(): Record<string, string> {
  return {
    model_type: 'whisper-tiny-test',
    n_mels: String(N_MELS),
    n_audio_layer: '1',
    n_text_layer: String(N_TEXT_LAYER),
    n_text_ctx: String(N_TEXT_CTX),
    n_text_state: String(N_TEXT_STATE),
    n_vocab: String(TOKENS.length),
    sot: String(SOT),
    eot: String(EOT),
    blank_id: '9',
    translate: '3',
    transcribe: '4',
    is_multilingual: '0',
    no_timestamps: String(NO_TIMESTAMPS),
    no_speech: '5',
    sot_sequence: String(SOT),
  };
}

export function tinyWhisperEncoder(metadata = tinyWhisperMetadata()): Uint8Array {
  // mel [1, 80, T] -> transpose [1, T, 80] -> matmul [80, 4] -> [1, T, 4] -> unsqueeze -> [1, 1, T, 4]
  const projection = new Float32Array(N_MELS * N_TEXT_STATE).map((_, i) => ((i % 7) - 3) / 100);
  return encodeOnnxModel({
    name: 'tiny_whisper_encoder',
    inputs: [{ name: 'mel', type: 'float', shape: [1, N_MELS, 'T'] }],
    outputs: [
      { name: 'n_layer_cross_k', type: 'float', shape: [N_TEXT_LAYER, 1, 'T', N_TEXT_STATE] },
      { name: 'n_layer_cross_v', type: 'float', shape: [N_TEXT_LAYER, 1, 'T', N_TEXT_STATE] },
    ],
    initializers: [
      { name: 'projection', dims: [N_MELS, N_TEXT_STATE], float: projection },
      { name: 'axes0', dims: [1], int64: BigInt64Array.from([0n]) },
    ],
    nodes: [
      { op: 'Transpose', inputs: ['mel'], outputs: ['mel_t'], attributes: { perm: { ints: [0, 2, 1] } } },
      { op: 'MatMul', inputs: ['mel_t', 'projection'], outputs: ['hidden'] },
      { op: 'Unsqueeze', inputs: ['hidden', 'axes0'], outputs: ['n_layer_cross_k'] },
      { op: 'Identity', inputs: ['n_layer_cross_k'], outputs: ['n_layer_cross_v'] },
    ],
    metadata,
  });
}

export function tinyWhisperDecoder(): Uint8Array {
  // logits = table[tokens]: row t holds a high score for the token that follows t.
  const vocab = TOKENS.length;
  const table = new Float32Array(vocab * vocab);
  for (let t = 0; t < vocab; t++) table[t * vocab + (NEXT_TOKEN[t] ?? EOT)] = 10;
  const cache = (name: string) => ({ name, type: 'float' as const, shape: [N_TEXT_LAYER, 1, N_TEXT_CTX, N_TEXT_STATE] });
  const cross = (name: string) => ({ name, type: 'float' as const, shape: [N_TEXT_LAYER, 1, 'T', N_TEXT_STATE] });
  return encodeOnnxModel({
    name: 'tiny_whisper_decoder',
    inputs: [
      { name: 'tokens', type: 'int64', shape: [1, 'n'] },
      cache('in_n_layer_self_k_cache'),
      cache('in_n_layer_self_v_cache'),
      cross('n_layer_cross_k'),
      cross('n_layer_cross_v'),
      { name: 'offset', type: 'int64', shape: [1] },
    ],
    outputs: [
      { name: 'logits', type: 'float', shape: [1, 'n', vocab] },
      cache('out_n_layer_self_k_cache'),
      cache('out_n_layer_self_v_cache'),
    ],
    initializers: [{ name: 'next_token_table', dims: [vocab, vocab], float: table }],
    nodes: [
      { op: 'Gather', inputs: ['next_token_table', 'tokens'], outputs: ['logits'], attributes: { axis: { int: 0 } } },
      { op: 'Identity', inputs: ['in_n_layer_self_k_cache'], outputs: ['out_n_layer_self_k_cache'] },
      { op: 'Identity', inputs: ['in_n_layer_self_v_cache'], outputs: ['out_n_layer_self_v_cache'] },
    ],
    metadata: tinyWhisperMetadata(),
  });
}

/** `tokens.txt` as sherpa-onnx reads it: `<base64 of the token's bytes> <id>` per line. */
export function tinyWhisperTokens(): string {
  return TOKENS.map((token, id) => `${Buffer.from(token).toString('base64')} ${id}`).join('\n') + '\n';
}

/** `omitMetadata` leaves keys out of the encoder, to test how a broken export is refused. */
export async function writeTinyWhisper(dir: string, options: { omitMetadata?: string[] } = {}): Promise<TinyWhisperFiles> {
  await mkdir(dir, { recursive: true });
  const files = {
    encoder: join(dir, TINY_WHISPER_FILES.encoder),
    decoder: join(dir, TINY_WHISPER_FILES.decoder),
    tokens: join(dir, TINY_WHISPER_FILES.tokens),
  };
  const metadata = tinyWhisperMetadata();
  for (const key of options.omitMetadata ?? []) delete metadata[key];
  await writeFile(files.encoder, tinyWhisperEncoder(metadata));
  await writeFile(files.decoder, tinyWhisperDecoder());
  await writeFile(files.tokens, tinyWhisperTokens());
  return files;
}
