/**
 * A small GGUF v3 writer: header, key-values (numbers, strings, booleans and arrays of them),
 * tensor descriptions in llama.cpp's dimension order (innermost first), and F32 tensor data
 * aligned to 32 bytes. Enough to write tiny test models that llama.cpp really loads.
 */
const ALIGNMENT = 32;

const enum ValueType {
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
}

export type GgufValue =
  | { u32: number }
  | { i32: number }
  | { f32: number }
  | { bool: boolean }
  | { str: string }
  | { strings: string[] }
  | { i32s: number[] };

export interface GgufTensor {
  name: string;
  /** llama.cpp order: ne0 (the contiguous dimension) first. */
  dims: number[];
  data: Float32Array;
}

class ByteWriter {
  readonly #chunks: Buffer[] = [];
  length = 0;

  push(buffer: Buffer): void {
    this.#chunks.push(buffer);
    this.length += buffer.length;
  }
  u32(v: number) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.push(b);
  }
  i32(v: number) {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    this.push(b);
  }
  u64(v: number) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  f32(v: number) {
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    this.push(b);
  }
  str(s: string) {
    const bytes = Buffer.from(s, 'utf8');
    this.u64(bytes.length);
    this.push(bytes);
  }
  pad() {
    const rest = this.length % ALIGNMENT;
    if (rest) this.push(Buffer.alloc(ALIGNMENT - rest));
  }
  toBuffer(): Buffer {
    return Buffer.concat(this.#chunks);
  }
}

function writeValue(w: ByteWriter, value: GgufValue): void {
  if ('u32' in value) {
    w.u32(ValueType.UINT32);
    w.u32(value.u32);
  } else if ('i32' in value) {
    w.u32(ValueType.INT32);
    w.i32(value.i32);
  } else if ('f32' in value) {
    w.u32(ValueType.FLOAT32);
    w.f32(value.f32);
  } else if ('bool' in value) {
    w.u32(ValueType.BOOL);
    w.push(Buffer.from([value.bool ? 1 : 0]));
  } else if ('str' in value) {
    w.u32(ValueType.STRING);
    w.str(value.str);
  } else if ('strings' in value) {
    writeArray(w, ValueType.STRING, value.strings, (s) => w.str(s));
  } else {
    writeArray(w, ValueType.INT32, value.i32s, (v) => w.i32(v));
  }
}

/** An array value: its element type, its length, then the elements. */
function writeArray<T>(w: ByteWriter, elementType: ValueType, items: readonly T[], writeItem: (item: T) => void): void {
  w.u32(ValueType.ARRAY);
  w.u32(elementType);
  w.u64(items.length);
  for (const item of items) writeItem(item);
}

export function encodeGguf(metadata: Record<string, GgufValue>, tensors: GgufTensor[]): Buffer {
  const w = new ByteWriter();
  w.push(Buffer.from('GGUF', 'ascii'));
  w.u32(3);
  w.u64(tensors.length);
  w.u64(Object.keys(metadata).length);
  for (const [key, value] of Object.entries(metadata)) {
    w.str(key);
    writeValue(w, value);
  }
  let offset = 0;
  for (const tensor of tensors) {
    const count = tensor.dims.reduce((a, b) => a * b, 1);
    if (count !== tensor.data.length) throw new Error(`tensor ${tensor.name}: dims hold ${count} values, data has ${tensor.data.length}`);
    w.str(tensor.name);
    w.u32(tensor.dims.length);
    for (const d of tensor.dims) w.u64(d);
    w.u32(0); // GGML_TYPE_F32
    w.u64(offset);
    offset += Math.ceil(tensor.data.byteLength / ALIGNMENT) * ALIGNMENT;
  }
  w.pad();
  for (const tensor of tensors) {
    w.push(Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength));
    w.pad();
  }
  return w.toBuffer();
}
