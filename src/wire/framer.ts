// Incremental framer for a PostgreSQL byte stream, in either direction.
//
// `push` a chunk, then call `next` until it returns null. A message that lies whole inside one
// chunk comes back as a view into that chunk (no copy); only a message that spans chunks is
// assembled into a buffer of its exact size. A large message of a streamable type that spans
// chunks is not assembled at all: it comes back as a StreamStart frame (header and the body bytes
// seen so far) and StreamPart frames as the rest arrives, so a 100 MB DataRow can be forwarded
// with backpressure without ever being held whole.
//
// Memory handed out in a frame is never written again: the framer appends only into buffers it
// has not returned yet, so a frame may be passed to socket.write and kept.
import { ProtocolError } from './errors.ts';
import { MAX_STARTUP_PACKET_BYTES, TYPED_HEADER_BYTES } from './protocol.ts';

export enum FrameKind {
  Message = 1,
  StreamStart = 2,
  StreamPart = 3,
}

/** Type byte reported for an untyped startup-phase packet. */
export const STARTUP_PACKET_TYPE = 0;

/** The bytes of one message's body, `buffer[bodyStart, end)`; every MessageFrame is one. */
export interface MessageView {
  buffer: Buffer;
  bodyStart: number;
  end: number;
}

/** A complete message: `buffer[start, end)` is its exact wire form. */
export interface MessageFrame {
  kind: FrameKind.Message;
  /** The type byte, or STARTUP_PACKET_TYPE for a startup-phase packet. */
  type: number;
  buffer: Buffer;
  /** The type byte (or, for a startup packet, the length field). */
  start: number;
  /** The first byte after the length field. */
  bodyStart: number;
  /** One past the last byte. */
  end: number;
}

/** The first bytes of a streamed message: its header and whatever body arrived with it. */
export interface StreamStartFrame {
  kind: FrameKind.StreamStart;
  type: number;
  /** The whole message's size on the wire, type byte included. */
  totalBytes: number;
  bytes: Buffer;
}

/** More body bytes of the streamed message; `last` marks its end. */
export interface StreamPartFrame {
  kind: FrameKind.StreamPart;
  type: number;
  bytes: Buffer;
  last: boolean;
}

export type Frame = MessageFrame | StreamStartFrame | StreamPartFrame;

export interface FramerOptions {
  /** Largest length field (which counts itself) accepted for a typed message; checked before allocating. */
  maxMessageBytes: number;
  /** Largest startup-phase packet; PostgreSQL's limit by default. */
  maxStartupPacketBytes?: number;
  /** A message at least this large (on the wire) that spans chunks is streamed; default: never stream. */
  streamThresholdBytes?: number;
  /** Which types may be streamed (default: all); types the caller must decode should not be. */
  streamable?: (type: number) => boolean;
  /** Read one untyped startup packet first (a server reading a client). */
  startup?: boolean;
}

const EMPTY = Buffer.alloc(0);
const STARTUP_LENGTH_BYTES = 4;
const MIN_STARTUP_PACKET_BYTES = 8;
const MIN_LENGTH_FIELD = 4;

const streamAll = (): boolean => true;

export class MessageFramer {
  private readonly maxMessageBytes: number;
  private readonly maxStartupPacketBytes: number;
  private readonly streamThresholdBytes: number;
  private readonly streamable: (type: number) => boolean;

  private chunk: Buffer = EMPTY;
  private pos = 0;
  /** A message being assembled across chunks: first just its header, then its exact size. */
  private partial: Buffer | null = null;
  private partialFilled = 0;
  /** Total size of the partial message; 0 while its header is incomplete. */
  private partialTotal = 0;
  private streamType = 0;
  private streamRemaining = 0;
  private startupNext: boolean;
  private failure: ProtocolError | null = null;

  constructor(options: FramerOptions) {
    if (!(options.maxMessageBytes >= MIN_LENGTH_FIELD)) {
      throw new Error(`maxMessageBytes must be at least ${MIN_LENGTH_FIELD}, got ${options.maxMessageBytes}`);
    }
    this.maxMessageBytes = options.maxMessageBytes;
    this.maxStartupPacketBytes = options.maxStartupPacketBytes ?? MAX_STARTUP_PACKET_BYTES;
    this.streamThresholdBytes = options.streamThresholdBytes ?? Number.POSITIVE_INFINITY;
    this.streamable = options.streamable ?? streamAll;
    this.startupNext = options.startup ?? false;
  }

  /** Adds received bytes. Cheapest when the previous chunk was drained with `next` first. */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.pos < this.chunk.length) {
      this.chunk = Buffer.concat([this.chunk.subarray(this.pos), chunk]);
    } else {
      this.chunk = chunk;
    }
    this.pos = 0;
  }

  /** The next message (or streamed piece), or null until more bytes arrive. Throws ProtocolError. */
  next(): Frame | null {
    if (this.failure !== null) throw this.failure;
    try {
      return this.step();
    } catch (error) {
      if (error instanceof ProtocolError) this.failure = error;
      throw error;
    }
  }

  /** The next message is an untyped startup-phase packet (after answering SSLRequest/GSSENCRequest). */
  expectStartupPacket(): void {
    if (this.partial !== null || this.streamRemaining > 0) {
      throw new Error('expectStartupPacket called in the middle of a message');
    }
    this.startupNext = true;
  }

  /** Bytes received but not yet returned in a frame (a client that sent more after SSLRequest shows here). */
  get bufferedBytes(): number {
    return this.chunk.length - this.pos + (this.partial === null ? 0 : this.partialFilled);
  }

  /** True while a streamed message still has body bytes to come. */
  get streaming(): boolean {
    return this.streamRemaining > 0;
  }

  private step(): Frame | null {
    const available = this.chunk.length - this.pos;
    if (this.streamRemaining > 0) {
      if (available === 0) return null;
      const take = Math.min(available, this.streamRemaining);
      const bytes = this.chunk.subarray(this.pos, this.pos + take);
      this.pos += take;
      this.streamRemaining -= take;
      return { kind: FrameKind.StreamPart, type: this.streamType, bytes, last: this.streamRemaining === 0 };
    }
    if (this.partial !== null) return this.continuePartial();
    if (available === 0) return null;

    const headerBytes = this.startupNext ? STARTUP_LENGTH_BYTES : TYPED_HEADER_BYTES;
    if (available < headerBytes) {
      this.partial = Buffer.allocUnsafe(headerBytes);
      this.chunk.copy(this.partial, 0, this.pos);
      this.partialFilled = available;
      this.partialTotal = 0;
      this.pos = this.chunk.length;
      return null;
    }
    const total = this.messageTotal(this.chunk, this.pos);
    if (available >= total) {
      const frame = this.messageFrame(this.chunk, this.pos, total);
      this.pos += total;
      return frame;
    }
    const type = this.startupNext ? STARTUP_PACKET_TYPE : this.chunk[this.pos]!;
    if (this.shouldStream(type, total)) {
      const bytes = this.chunk.subarray(this.pos);
      this.pos = this.chunk.length;
      return this.startStream(type, total, bytes);
    }
    this.partial = Buffer.allocUnsafe(total);
    this.chunk.copy(this.partial, 0, this.pos);
    this.partialFilled = available;
    this.partialTotal = total;
    this.pos = this.chunk.length;
    return null;
  }

  private continuePartial(): Frame | null {
    let partial = this.partial!;
    if (this.partialTotal === 0) {
      if (!this.fillPartial(partial.length)) return null;
      const total = this.messageTotal(partial, 0);
      const type = this.startupNext ? STARTUP_PACKET_TYPE : partial[0]!;
      if (total > partial.length && this.shouldStream(type, total)) {
        this.partial = null;
        return this.startStream(type, total, partial);
      }
      if (total > partial.length) {
        const whole = Buffer.allocUnsafe(total);
        partial.copy(whole, 0, 0, this.partialFilled);
        this.partial = partial = whole;
      }
      this.partialTotal = total;
    }
    if (!this.fillPartial(this.partialTotal)) return null;
    this.partial = null;
    return this.messageFrame(partial, 0, this.partialTotal);
  }

  /** Copies from the current chunk until the partial buffer holds `target` bytes; true when it does. */
  private fillPartial(target: number): boolean {
    const take = Math.min(target - this.partialFilled, this.chunk.length - this.pos);
    this.chunk.copy(this.partial!, this.partialFilled, this.pos, this.pos + take);
    this.partialFilled += take;
    this.pos += take;
    return this.partialFilled === target;
  }

  private startStream(type: number, total: number, bytes: Buffer): StreamStartFrame {
    this.streamType = type;
    this.streamRemaining = total - bytes.length;
    return { kind: FrameKind.StreamStart, type, totalBytes: total, bytes };
  }

  private shouldStream(type: number, total: number): boolean {
    return !this.startupNext && total >= this.streamThresholdBytes && this.streamable(type);
  }

  /** Validates the length field at `at` before anything is allocated for the message. */
  private messageTotal(buffer: Buffer, at: number): number {
    if (this.startupNext) {
      const length = buffer.readInt32BE(at);
      if (length < MIN_STARTUP_PACKET_BYTES || length > this.maxStartupPacketBytes) {
        throw new ProtocolError(
          `invalid startup packet length ${length} (must be ${MIN_STARTUP_PACKET_BYTES}..${this.maxStartupPacketBytes})`,
        );
      }
      return length;
    }
    const length = buffer.readInt32BE(at + 1);
    if (length < MIN_LENGTH_FIELD) {
      throw new ProtocolError(`invalid length ${length} in message of type ${describeType(buffer[at]!)}`);
    }
    if (length > this.maxMessageBytes) {
      throw new ProtocolError(
        `message of type ${describeType(buffer[at]!)} is ${length} bytes, over the limit of ${this.maxMessageBytes}`,
      );
    }
    return length + 1;
  }

  private messageFrame(buffer: Buffer, start: number, total: number): MessageFrame {
    if (this.startupNext) {
      this.startupNext = false;
      return {
        kind: FrameKind.Message,
        type: STARTUP_PACKET_TYPE,
        buffer,
        start,
        bodyStart: start + STARTUP_LENGTH_BYTES,
        end: start + total,
      };
    }
    return {
      kind: FrameKind.Message,
      type: buffer[start]!,
      buffer,
      start,
      bodyStart: start + TYPED_HEADER_BYTES,
      end: start + total,
    };
  }
}

/** 'Q' (0x51) style, for error messages and logs. */
export function describeType(type: number): string {
  const hex = `0x${type.toString(16).padStart(2, '0')}`;
  return type >= 0x20 && type < 0x7f ? `'${String.fromCharCode(type)}' (${hex})` : hex;
}

/** The exact wire bytes of a complete message (a view, no copy). */
export function frameBytes(frame: MessageFrame): Buffer {
  return frame.buffer.subarray(frame.start, frame.end);
}
