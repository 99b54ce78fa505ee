/**
 * A tiny stand-in for Smart Turn v3 with the real model's interface: input `input_features` float32
 * [batch, 80, 800] (Whisper log-mel features of 8 s), output `logits` float32 [batch, 1] holding a
 * probability. It says: sigmoid(10 (mean feature + 1.5) - 1). Silence-only audio (every feature
 * -1.5) gives 0.27, "incomplete"; any speech raises the mean, so it gives "complete". A few hundred
 * bytes; what it says about turns means nothing, it exercises the real load and inference path.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { encodeOnnxModel } from './onnx-writer.js';

export function tinySmartTurnModel(): Uint8Array {
  return encodeOnnxModel({
    name: 'tiny_smart_turn',
    inputs: [{ name: 'input_features', type: 'float', shape: ['batch', 80, 800] }],
    outputs: [{ name: 'logits', type: 'float', shape: ['batch', 1] }],
    initializers: [
      { name: 'axes1', dims: [1], int64: BigInt64Array.from([1n]) },
      { name: 'offset', dims: [], float: Float32Array.of(1.5) },
      { name: 'weight', dims: [], float: Float32Array.of(10) },
      { name: 'bias', dims: [], float: Float32Array.of(-1) },
    ],
    nodes: [
      { op: 'ReduceMean', inputs: ['input_features'], outputs: ['mean'], attributes: { axes: { ints: [1, 2] }, keepdims: { int: 0 } } },
      { op: 'Unsqueeze', inputs: ['mean', 'axes1'], outputs: ['mean_2d'] },
      { op: 'Add', inputs: ['mean_2d', 'offset'], outputs: ['shifted'] },
      { op: 'Mul', inputs: ['shifted', 'weight'], outputs: ['scaled'] },
      { op: 'Add', inputs: ['scaled', 'bias'], outputs: ['logit'] },
      { op: 'Sigmoid', inputs: ['logit'], outputs: ['logits'] },
    ],
    metadata: { model_type: 'smart-turn-tiny-test' },
  });
}

export async function writeTinySmartTurn(path: string): Promise<string> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, tinySmartTurnModel());
  return path;
}
