// One WAL record on disk: [len u32][crc u32][type u8][payload]. `len` counts the
// payload only; the CRC32 covers type and payload, so a record whose type byte
// flipped is caught like one whose payload did.
import { crc32 } from 'node:zlib';

export const RECORD_HEADER_BYTES = 9;

export enum RecordType {
  /** term, vote and commit together: a vote is never durable without its term. */
  HardState = 1,
  Entries = 2,
  /** Drops every entry at or above an index (a conflicting suffix). */
  Truncate = 3,
  /** The log before this index lives in the snapshot file. */
  SnapshotMark = 4,
}

const KNOWN_TYPES = new Set<number>([
  RecordType.HardState,
  RecordType.Entries,
  RecordType.Truncate,
  RecordType.SnapshotMark,
]);

export interface WalRecord {
  type: RecordType;
  payload: Uint8Array;
}

export type DecodeResult =
  | { ok: true; record: WalRecord; nextOffset: number }
  | { ok: false; reason: string };

function checksum(type: number, payload: Uint8Array): number {
  return crc32(payload, crc32(Uint8Array.of(type)));
}

export function encodeRecord(record: WalRecord, maxRecordBytes: number): Buffer {
  if (record.payload.length > maxRecordBytes) {
    throw new Error(`raft WAL record of ${record.payload.length} bytes exceeds the cap of ${maxRecordBytes}`);
  }
  const out = Buffer.allocUnsafe(RECORD_HEADER_BYTES + record.payload.length);
  out.writeUInt32BE(record.payload.length, 0);
  out.writeUInt32BE(checksum(record.type, record.payload), 4);
  out.writeUInt8(record.type, 8);
  out.set(record.payload, RECORD_HEADER_BYTES);
  return out;
}

/** Decodes the record starting at `offset`; never throws on bad bytes. */
export function decodeRecordAt(buf: Buffer, offset: number, maxRecordBytes: number): DecodeResult {
  const remaining = buf.length - offset;
  if (remaining < RECORD_HEADER_BYTES) return { ok: false, reason: 'incomplete record header' };
  const len = buf.readUInt32BE(offset);
  if (len > maxRecordBytes) return { ok: false, reason: `record length ${len} over the cap` };
  if (len > remaining - RECORD_HEADER_BYTES)
    return { ok: false, reason: 'record runs past the end of the file' };
  const type = buf.readUInt8(offset + 8);
  if (!KNOWN_TYPES.has(type)) return { ok: false, reason: `unknown record type ${type}` };
  const payload = buf.subarray(offset + RECORD_HEADER_BYTES, offset + RECORD_HEADER_BYTES + len);
  if (checksum(type, payload) !== buf.readUInt32BE(offset + 4))
    return { ok: false, reason: 'checksum mismatch' };
  return {
    ok: true,
    record: { type: type as RecordType, payload },
    nextOffset: offset + RECORD_HEADER_BYTES + len,
  };
}
