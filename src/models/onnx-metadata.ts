/**
 * Reads the metadata (ModelProto.metadata_props, field 14) of an ONNX file without loading the
 * model: the graph and weights are skipped by their lengths, so a 500 MB file costs a few reads.
 */
import { open } from 'node:fs/promises';

export async function readOnnxMetadata(path: string): Promise<Record<string, string>> {
  const file = await open(path, 'r');
  try {
    const { size } = await file.stat();
    const metadata: Record<string, string> = {};
    let position = 0;
    const head = Buffer.alloc(20);
    while (position < size) {
      const { bytesRead } = await file.read(head, 0, Math.min(20, size - position), position);
      let at = 0;
      const varint = (): number => {
        let value = 0;
        let shift = 0;
        for (;;) {
          if (at >= bytesRead) throw new Error('truncated varint');
          const byte = head[at++]!;
          value += (byte & 0x7f) * 2 ** shift;
          if (byte < 0x80) return value;
          shift += 7;
        }
      };
      const tag = varint();
      const field = Math.floor(tag / 8);
      const wire = tag & 7;
      if (wire === 0) {
        varint();
        position += at;
      } else if (wire === 2) {
        const length = varint();
        if (field === 14) {
          const entry = Buffer.alloc(length);
          await file.read(entry, 0, length, position + at);
          const [key, value] = parseEntry(entry);
          metadata[key] = value;
        }
        position += at + length;
      } else if (wire === 5) {
        position += at + 4;
      } else if (wire === 1) {
        position += at + 8;
      } else {
        throw new Error(`unexpected protobuf wire type ${wire}`);
      }
    }
    return metadata;
  } finally {
    await file.close();
  }
}

/** StringStringEntryProto: key = field 1, value = field 2. */
function parseEntry(bytes: Buffer): [string, string] {
  let key = '';
  let value = '';
  let at = 0;
  while (at < bytes.length) {
    const tag = bytes[at++]!;
    let length = 0;
    let shift = 0;
    for (;;) {
      const byte = bytes[at++]!;
      length += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) break;
      shift += 7;
    }
    const text = bytes.toString('utf8', at, at + length);
    if (tag >> 3 === 1) key = text;
    else if (tag >> 3 === 2) value = text;
    at += length;
  }
  return [key, value];
}
