// Bounds-checked cursor and a growable writer: the only two ways the codec touches bytes.
import { ProtocolError } from './errors.ts';

/** Reads one message body; every read checks that it stays inside [offset, end). */
export class BodyReader {
  offset: number;

  constructor(
    readonly buffer: Buffer,
    start: number,
    readonly end: number,
    /** Names the message in error text ("Bind", "StartupMessage"). */
    readonly what: string,
  ) {
    this.offset = start;
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  private need(bytes: number): void {
    if (bytes > this.end - this.offset) {
      throw new ProtocolError(`${this.what} message is shorter than its contents say`);
    }
  }

  byte(): number {
    this.need(1);
    return this.buffer[this.offset++]!;
  }

  int16(): number {
    this.need(2);
    const value = this.buffer.readInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  uint16(): number {
    this.need(2);
    const value = this.buffer.readUInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  int32(): number {
    this.need(4);
    const value = this.buffer.readInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  uint32(): number {
    this.need(4);
    const value = this.buffer.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  /** A NUL-terminated string, decoded as UTF-8. */
  cstring(): string {
    const nul = this.buffer.indexOf(0, this.offset);
    if (nul === -1 || nul >= this.end) {
      throw new ProtocolError(`${this.what} message has a string without its terminating NUL`);
    }
    const value = this.buffer.toString('utf8', this.offset, nul);
    this.offset = nul + 1;
    return value;
  }

  /** A view of the next `length` bytes (no copy). */
  bytes(length: number): Buffer {
    if (length < 0) throw new ProtocolError(`${this.what} message has a negative length field`);
    this.need(length);
    const value = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  /** An int32 length then that many bytes; -1 means NULL. */
  nullableBytes(): Buffer | null {
    const length = this.int32();
    if (length === -1) return null;
    return this.bytes(length);
  }

  /** A view of everything left. */
  rest(): Buffer {
    return this.bytes(this.remaining);
  }

  /** Count fields must be non-negative and cannot promise more elements than bytes left. */
  count(minBytesEach: number): number {
    const n = this.int16();
    if (n < 0 || n * minBytesEach > this.remaining) {
      throw new ProtocolError(`${this.what} message has an impossible element count ${n}`);
    }
    return n;
  }

  /** The message must end exactly here: trailing bytes mean the peer and we disagree on the format. */
  done(): void {
    if (this.offset !== this.end) {
      throw new ProtocolError(`${this.what} message has ${this.end - this.offset} unexpected trailing bytes`);
    }
  }
}

const INITIAL_WRITER_BYTES = 256;

/** Builds one message: `new MessageWriter(type)`, append fields, `finish()` patches the length. */
export class MessageWriter {
  private buffer: Buffer;
  private offset: number;
  private readonly lengthAt: number;

  /** `type` null builds an untyped startup-phase packet (length first). */
  constructor(type: number | null, sizeHint = INITIAL_WRITER_BYTES) {
    this.buffer = Buffer.allocUnsafe(Math.max(sizeHint, 8));
    if (type === null) {
      this.lengthAt = 0;
      this.offset = 4;
    } else {
      this.buffer[0] = type;
      this.lengthAt = 1;
      this.offset = 5;
    }
  }

  private ensure(bytes: number): void {
    const needed = this.offset + bytes;
    if (needed <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < needed) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.buffer.copy(grown, 0, 0, this.offset);
    this.buffer = grown;
  }

  byte(value: number): this {
    this.ensure(1);
    this.buffer[this.offset++] = value;
    return this;
  }

  int16(value: number): this {
    this.ensure(2);
    this.buffer.writeInt16BE(value, this.offset);
    this.offset += 2;
    return this;
  }

  int32(value: number): this {
    this.ensure(4);
    this.buffer.writeInt32BE(value, this.offset);
    this.offset += 4;
    return this;
  }

  uint32(value: number): this {
    this.ensure(4);
    this.buffer.writeUInt32BE(value, this.offset);
    this.offset += 4;
    return this;
  }

  cstring(value: string): this {
    // A NUL inside would silently cut the string on the peer's side: a caller bug.
    if (value.includes('\0'))
      throw new Error(`protocol strings cannot contain NUL: ${JSON.stringify(value)}`);
    const length = Buffer.byteLength(value, 'utf8');
    this.ensure(length + 1);
    this.buffer.write(value, this.offset, 'utf8');
    this.offset += length;
    this.buffer[this.offset++] = 0;
    return this;
  }

  bytes(value: Uint8Array): this {
    this.ensure(value.length);
    this.buffer.set(value, this.offset);
    this.offset += value.length;
    return this;
  }

  /** int32 length (-1 for null) then the bytes. */
  nullableBytes(value: Uint8Array | null): this {
    if (value === null) return this.int32(-1);
    return this.int32(value.length).bytes(value);
  }

  finish(): Buffer {
    this.buffer.writeInt32BE(this.offset - this.lengthAt, this.lengthAt);
    return this.buffer.subarray(0, this.offset);
  }
}
