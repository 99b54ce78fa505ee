/**
 * Just enough of the ONNX protobuf format to write small graphs from Node: a model with a graph
 * of nodes, float/int64 initializers, typed inputs and outputs, and metadata. Field numbers are
 * those of onnx.proto (ModelProto, GraphProto, NodeProto, TensorProto, ValueInfoProto, ...).
 */

type Field = Uint8Array;

function varint(value: number | bigint): number[] {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return out;
}

const concat = (parts: readonly Uint8Array[]): Uint8Array => Buffer.concat(parts);

const int = (field: number, value: number | bigint): Field => Uint8Array.from([...varint(field << 3), ...varint(value)]);
const bytes = (field: number, data: Uint8Array): Field => concat([Uint8Array.from([...varint((field << 3) | 2), ...varint(data.length)]), data]);
const str = (field: number, text: string): Field => bytes(field, new TextEncoder().encode(text));
const float32 = (field: number, value: number): Field => {
  const b = new Uint8Array(5);
  b[0] = (field << 3) | 5;
  new DataView(b.buffer).setFloat32(1, value, true);
  return b;
};

export const DataType = { FLOAT: 1, INT64: 7 } as const;

export interface TensorSpec {
  name: string;
  type: 'float' | 'int64';
  /** Numbers are fixed sizes; strings are named dynamic dimensions. */
  shape: (number | string)[];
}

export interface Initializer {
  name: string;
  dims: number[];
  float?: Float32Array;
  int64?: BigInt64Array;
}

export type AttributeValue = { int: number } | { ints: number[] } | { float: number } | { tensor: Initializer };

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  attributes?: Record<string, AttributeValue>;
}

function tensor(init: Initializer): Uint8Array {
  const raw = init.float ?? init.int64!;
  return concat([
    ...init.dims.map((d) => int(1, d)),
    int(2, init.float ? DataType.FLOAT : DataType.INT64),
    str(8, init.name),
    bytes(9, new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength)),
  ]);
}

function valueInfo(spec: TensorSpec): Uint8Array {
  const dims = spec.shape.map((d) => bytes(1, typeof d === 'number' ? int(1, d) : str(2, d)));
  const tensorType = concat([int(1, spec.type === 'float' ? DataType.FLOAT : DataType.INT64), bytes(2, concat(dims))]);
  return concat([str(1, spec.name), bytes(2, bytes(1, tensorType))]);
}

// AttributeProto.type values
const ATTR = { FLOAT: 1, INT: 2, TENSOR: 4, INTS: 7 } as const;

function attribute(name: string, value: AttributeValue): Uint8Array {
  if ('int' in value) return concat([str(1, name), int(3, value.int), int(20, ATTR.INT)]);
  if ('float' in value) return concat([str(1, name), float32(2, value.float), int(20, ATTR.FLOAT)]);
  if ('tensor' in value) return concat([str(1, name), bytes(5, tensor(value.tensor)), int(20, ATTR.TENSOR)]);
  return concat([str(1, name), ...value.ints.map((v) => int(8, v)), int(20, ATTR.INTS)]);
}

function node(spec: NodeSpec, index: number): Uint8Array {
  return concat([
    ...spec.inputs.map((i) => str(1, i)),
    ...spec.outputs.map((o) => str(2, o)),
    str(3, `${spec.op}_${index}`),
    str(4, spec.op),
    ...Object.entries(spec.attributes ?? {}).map(([name, value]) => bytes(5, attribute(name, value))),
  ]);
}

export interface ModelSpec {
  name: string;
  nodes: NodeSpec[];
  initializers: Initializer[];
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  metadata?: Record<string, string>;
  opset?: number;
}

export function encodeOnnxModel(spec: ModelSpec): Uint8Array {
  const graph = concat([
    ...spec.nodes.map((n, i) => bytes(1, node(n, i))),
    str(2, spec.name),
    ...spec.initializers.map((t) => bytes(5, tensor(t))),
    ...spec.inputs.map((v) => bytes(11, valueInfo(v))),
    ...spec.outputs.map((v) => bytes(12, valueInfo(v))),
  ]);
  return concat([
    int(1, 8), // ir_version
    str(2, 's2s-worker tiny-models'),
    bytes(7, graph),
    bytes(8, concat([str(1, ''), int(2, spec.opset ?? 13)])),
    ...Object.entries(spec.metadata ?? {}).map(([key, value]) => bytes(14, concat([str(1, key), str(2, value)]))),
  ]);
}
