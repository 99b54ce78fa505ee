/**
 * A WebSocket client at the byte level, for hostile-client tests: it writes frames exactly as given
 * (several in one TCP write, invalid UTF-8, reserved opcodes, any length), which the `ws` client
 * refuses to do. It reads the server's unmasked frames back as messages.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

export const OPCODE = { text: 0x1, binary: 0x2, close: 0x8, reserved: 0x3 } as const;

export interface RawMessage {
  opcode: number;
  payload: Buffer;
}

/** One masked client frame (FIN set). */
export function clientFrame(opcode: number, payload: Uint8Array | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : Buffer.from(payload);
  const length = body.length;
  const header = length < 126 ? Buffer.from([0x80 | opcode, 0x80 | length]) : length < 65_536 ? Buffer.alloc(4) : Buffer.alloc(10);
  if (length >= 126 && length < 65_536) {
    header[0] = 0x80 | opcode;
    header[1] = 0x80 | 126;
    header.writeUInt16BE(length, 2);
  } else if (length >= 65_536) {
    header[0] = 0x80 | opcode;
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(length), 2);
  }
  const mask = randomBytes(4);
  const masked = Buffer.alloc(length);
  for (let i = 0; i < length; i++) masked[i] = body[i]! ^ mask[i % 4]!;
  return Buffer.concat([header, mask, masked]);
}

export class RawWebSocket {
  readonly messages: RawMessage[] = [];
  readonly closed: Promise<void>;
  #pending = Buffer.alloc(0);

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.#read(chunk));
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
  }

  /** Upgrades `path` on host:port; resolves with the HTTP status line's code and the socket (open when 101). */
  static open(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; ws: RawWebSocket }> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('error', reject);
      socket.once('connect', () => {
        const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
        socket.write(
          `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`,
        );
        let head = Buffer.alloc(0);
        const onData = (chunk: Buffer): void => {
          head = Buffer.concat([head, chunk]);
          const end = head.indexOf('\r\n\r\n');
          if (end < 0) return;
          socket.off('data', onData);
          const status = Number(/^HTTP\/1\.1 (\d+)/.exec(head.subarray(0, end).toString())?.[1] ?? 0);
          const ws = new RawWebSocket(socket);
          const rest = head.subarray(end + 4);
          if (rest.length > 0) ws.#read(rest);
          resolve({ status, ws });
        };
        socket.on('data', onData);
      });
    });
  }

  /** Writes the frames in one TCP write, so the server reads them from one buffer. */
  write(...frames: Buffer[]): void {
    this.socket.write(Buffer.concat(frames));
  }

  texts(): { type: string; [k: string]: unknown }[] {
    return this.messages.filter((m) => m.opcode === OPCODE.text).map((m) => JSON.parse(m.payload.toString()) as { type: string });
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Stops reading from the socket: a client that never reads what the server sends. */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  get isClosed(): boolean {
    return this.socket.destroyed || this.socket.readyState === 'closed';
  }

  #read(chunk: Buffer): void {
    this.#pending = Buffer.concat([this.#pending, chunk]);
    for (;;) {
      if (this.#pending.length < 2) return;
      const opcode = this.#pending[0]! & 0x0f;
      let length = this.#pending[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (this.#pending.length < 4) return;
        length = this.#pending.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (this.#pending.length < 10) return;
        length = Number(this.#pending.readBigUInt64BE(2));
        offset = 10;
      }
      if (this.#pending.length < offset + length) return;
      this.messages.push({ opcode, payload: Buffer.from(this.#pending.subarray(offset, offset + length)) });
      this.#pending = this.#pending.subarray(offset + length);
      // The server closed: answer by ending the connection, as a client that honours the close would.
      if (opcode === OPCODE.close) this.socket.end();
    }
  }
}
