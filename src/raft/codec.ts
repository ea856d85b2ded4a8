// Binary encoding of the Raft core's types, shared by the wire (transport
// payloads) and the WAL (record payloads). Big-endian, length-prefixed, no
// schema evolution beyond the frame/record version: both ends run one release.
import type {
  ConfState,
  Entry,
  EntryType,
  HardState,
  Message,
  MessageType,
  Snapshot,
  SnapshotMetadata,
} from './core/types.ts';

export class CodecError extends Error {
  override name = 'CodecError';
}

const ENTRY_TYPES: readonly EntryType[] = ['normal', 'confChange', 'noop'];
const MESSAGE_TYPES: readonly MessageType[] = [
  'app',
  'appResp',
  'vote',
  'preVote',
  'voteResp',
  'preVoteResp',
  'heartbeat',
  'heartbeatResp',
  'snap',
  'timeoutNow',
];
const U64_LIMIT = 1n << 64n;

class Writer {
  private buf = Buffer.allocUnsafe(256);
  private offset = 0;

  private reserve(n: number): void {
    if (this.offset + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.offset + n));
    this.buf.copy(next, 0, 0, this.offset);
    this.buf = next;
  }

  u8(v: number): void {
    this.reserve(1);
    this.buf.writeUInt8(v, this.offset);
    this.offset += 1;
  }

  u32(v: number): void {
    this.reserve(4);
    this.buf.writeUInt32BE(v, this.offset);
    this.offset += 4;
  }

  /** A non-negative safe integer (index, term, commit, round). */
  uint(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new CodecError(`not a non-negative safe integer: ${v}`);
    this.reserve(8);
    this.buf.writeBigUInt64BE(BigInt(v), this.offset);
    this.offset += 8;
  }

  /** A bigint in (-2^64, 2^64): sign byte then magnitude. */
  bigint(v: bigint): void {
    const magnitude = v < 0n ? -v : v;
    if (magnitude >= U64_LIMIT) throw new CodecError(`bigint out of range: ${v}`);
    this.u8(v < 0n ? 1 : 0);
    this.reserve(8);
    this.buf.writeBigUInt64BE(magnitude, this.offset);
    this.offset += 8;
  }

  bool(v: boolean): void {
    this.u8(v ? 1 : 0);
  }

  bytes(v: Uint8Array): void {
    this.u32(v.length);
    this.reserve(v.length);
    this.buf.set(v, this.offset);
    this.offset += v.length;
  }

  string(v: string): void {
    this.bytes(Buffer.from(v, 'utf8'));
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.offset);
    out.set(this.buf.subarray(0, this.offset));
    return out;
  }
}

class Reader {
  private offset = 0;
  private readonly view: Buffer;

  constructor(bytes: Uint8Array) {
    this.view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private need(n: number): void {
    if (this.offset + n > this.view.length) {
      throw new CodecError(
        `truncated input: need ${n} bytes at offset ${this.offset} of ${this.view.length}`,
      );
    }
  }

  u8(): number {
    this.need(1);
    return this.view.readUInt8(this.offset++);
  }

  u32(): number {
    this.need(4);
    const v = this.view.readUInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  uint(): number {
    this.need(8);
    const v = this.view.readBigUInt64BE(this.offset);
    this.offset += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new CodecError(`integer too large: ${v}`);
    return Number(v);
  }

  bigint(): bigint {
    const sign = this.u8();
    if (sign > 1) throw new CodecError(`bad sign byte ${sign}`);
    this.need(8);
    const magnitude = this.view.readBigUInt64BE(this.offset);
    this.offset += 8;
    return sign === 1 ? -magnitude : magnitude;
  }

  bool(): boolean {
    const v = this.u8();
    if (v > 1) throw new CodecError(`bad boolean byte ${v}`);
    return v === 1;
  }

  bytes(): Uint8Array {
    const len = this.u32();
    this.need(len);
    // A copy: callers keep entries long after the frame buffer is gone.
    const out = new Uint8Array(len);
    out.set(this.view.subarray(this.offset, this.offset + len));
    this.offset += len;
    return out;
  }

  string(): string {
    return Buffer.from(this.bytes()).toString('utf8');
  }

  enumOf<T>(values: readonly T[], what: string): T {
    const code = this.u8();
    const value = values[code];
    if (value === undefined) throw new CodecError(`unknown ${what} code ${code}`);
    return value;
  }

  end(): void {
    if (this.offset !== this.view.length) {
      throw new CodecError(`${this.view.length - this.offset} trailing bytes after the value`);
    }
  }
}

function enumCode<T>(values: readonly T[], value: T): number {
  const code = values.indexOf(value);
  if (code < 0) throw new CodecError(`unknown enum value ${String(value)}`);
  return code;
}

function writeEntry(w: Writer, e: Entry): void {
  w.uint(e.index);
  w.uint(e.term);
  w.u8(enumCode(ENTRY_TYPES, e.type));
  w.bytes(e.data);
}

function readEntry(r: Reader): Entry {
  return { index: r.uint(), term: r.uint(), type: r.enumOf(ENTRY_TYPES, 'entry type'), data: r.bytes() };
}

function writeList<T>(w: Writer, items: readonly T[], write: (w: Writer, item: T) => void): void {
  w.u32(items.length);
  for (const item of items) write(w, item);
}

function readList<T>(r: Reader, read: (r: Reader) => T): T[] {
  const n = r.u32();
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(read(r));
  return out;
}

function writeConfState(w: Writer, c: ConfState): void {
  for (const list of [c.voters, c.witnesses, c.learners]) writeList(w, list, (w, id) => w.string(id));
}

function readConfState(r: Reader): ConfState {
  const read = () => readList(r, (r) => r.string());
  return { voters: read(), witnesses: read(), learners: read() };
}

function writeSnapshotMetadata(w: Writer, m: SnapshotMetadata): void {
  w.uint(m.index);
  w.uint(m.term);
  writeConfState(w, m.confState);
}

function readSnapshotMetadata(r: Reader): SnapshotMetadata {
  return { index: r.uint(), term: r.uint(), confState: readConfState(r) };
}

function writeSnapshot(w: Writer, s: Snapshot): void {
  writeSnapshotMetadata(w, s.metadata);
  w.bytes(s.data);
}

function readSnapshot(r: Reader): Snapshot {
  return { metadata: readSnapshotMetadata(r), data: r.bytes() };
}

function decodeWith<T>(bytes: Uint8Array, read: (r: Reader) => T): T {
  const r = new Reader(bytes);
  const value = read(r);
  r.end();
  return value;
}

function encodeWith(write: (w: Writer) => void): Uint8Array {
  const w = new Writer();
  write(w);
  return w.finish();
}

export function encodeEntries(entries: readonly Entry[]): Uint8Array {
  return encodeWith((w) => writeList(w, entries, writeEntry));
}

export function decodeEntries(bytes: Uint8Array): Entry[] {
  return decodeWith(bytes, (r) => readList(r, readEntry));
}

export function encodeHardState(h: HardState): Uint8Array {
  return encodeWith((w) => {
    w.uint(h.term);
    w.string(h.vote);
    w.uint(h.commit);
  });
}

export function decodeHardState(bytes: Uint8Array): HardState {
  return decodeWith(bytes, (r) => ({ term: r.uint(), vote: r.string(), commit: r.uint() }));
}

export function encodeSnapshot(s: Snapshot): Uint8Array {
  return encodeWith((w) => writeSnapshot(w, s));
}

export function decodeSnapshot(bytes: Uint8Array): Snapshot {
  return decodeWith(bytes, readSnapshot);
}

export function encodeSnapshotMetadata(m: SnapshotMetadata): Uint8Array {
  return encodeWith((w) => writeSnapshotMetadata(w, m));
}

export function decodeSnapshotMetadata(bytes: Uint8Array): SnapshotMetadata {
  return decodeWith(bytes, readSnapshotMetadata);
}

export function encodeMessage(m: Message): Uint8Array {
  return encodeWith((w) => {
    w.u8(enumCode(MESSAGE_TYPES, m.type));
    w.string(m.from);
    w.string(m.to);
    w.uint(m.term);
    switch (m.type) {
      case 'app':
        w.uint(m.index);
        w.uint(m.logTerm);
        writeList(w, m.entries, writeEntry);
        w.uint(m.commit);
        return;
      case 'appResp':
        w.uint(m.index);
        w.bool(m.reject);
        w.uint(m.rejectHint);
        return;
      case 'vote':
      case 'preVote':
        w.uint(m.index);
        w.uint(m.logTerm);
        w.bigint(m.fitness);
        w.bool(m.transfer);
        return;
      case 'voteResp':
      case 'preVoteResp':
        w.bool(m.reject);
        return;
      case 'heartbeat':
        w.uint(m.commit);
        w.uint(m.round);
        return;
      case 'heartbeatResp':
        w.uint(m.round);
        return;
      case 'snap':
        writeSnapshot(w, m.snapshot);
        return;
      case 'timeoutNow':
        return;
    }
  });
}

export function decodeMessage(bytes: Uint8Array): Message {
  return decodeWith(bytes, (r): Message => {
    const type = r.enumOf(MESSAGE_TYPES, 'message type');
    const base = { from: r.string(), to: r.string(), term: r.uint() };
    switch (type) {
      case 'app':
        return {
          ...base,
          type,
          index: r.uint(),
          logTerm: r.uint(),
          entries: readList(r, readEntry),
          commit: r.uint(),
        };
      case 'appResp':
        return { ...base, type, index: r.uint(), reject: r.bool(), rejectHint: r.uint() };
      case 'vote':
      case 'preVote':
        return { ...base, type, index: r.uint(), logTerm: r.uint(), fitness: r.bigint(), transfer: r.bool() };
      case 'voteResp':
      case 'preVoteResp':
        return { ...base, type, reject: r.bool() };
      case 'heartbeat':
        return { ...base, type, commit: r.uint(), round: r.uint() };
      case 'heartbeatResp':
        return { ...base, type, round: r.uint() };
      case 'snap':
        return { ...base, type, snapshot: readSnapshot(r) };
      case 'timeoutNow':
        return { ...base, type };
    }
  });
}
