// The Raft write-ahead log: numbered segment files of checksummed records.
// Appends go to the newest segment; a batch is written with one write and made
// durable with one datasync. Recovery tells a torn tail (a crash mid-write: cut
// it off) from corruption (a bad record with valid ones after it: refuse to start).
import { type FileHandle, mkdir, open, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../log.ts';
import { fsyncDirectory } from './fsync.ts';
import { decodeRecordAt, encodeRecord, RECORD_HEADER_BYTES, type WalRecord } from './record.ts';

export interface WalOptions {
  logger: Logger;
  /** Upper bound on one record's payload; larger appends are a programmer error. */
  maxRecordBytes: number;
  /** A segment that grew past this starts a new one at the next append. */
  segmentBytes: number;
}

export class WalCorruptionError extends Error {
  constructor(
    readonly file: string,
    readonly offset: number,
    reason: string,
  ) {
    super(
      `raft WAL corrupt: ${file} at byte ${offset} (${reason}) is followed by valid records, so this is ` +
        'damage, not a torn write; refusing to start. Remove this member from the group, wipe its raft ' +
        'data directory and add it back so it catches up from the leader.',
    );
    this.name = 'WalCorruptionError';
  }
}

const SEGMENT_PATTERN = /^wal-(\d{16})\.log$/;

function segmentName(seq: number): string {
  return `wal-${String(seq).padStart(16, '0')}.log`;
}

export interface RecoveredWal {
  wal: Wal;
  records: WalRecord[];
}

export class Wal {
  private failed: Error | null = null;

  private constructor(
    private readonly dir: string,
    private readonly options: WalOptions,
    private segments: number[],
    private handle: FileHandle,
    private segmentSize: number,
  ) {}

  /** Opens (creating if needed) the WAL in `dir` and returns every valid record in order. */
  static async open(dir: string, options: WalOptions): Promise<RecoveredWal> {
    await mkdir(dir, { recursive: true });
    const segments = (await readdir(dir))
      .map((name) => SEGMENT_PATTERN.exec(name)?.[1])
      .filter((seq): seq is string => seq !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
    const records: WalRecord[] = [];
    let lastSize = 0;
    for (const [i, seq] of segments.entries()) {
      const file = path.join(dir, segmentName(seq));
      const buf = await readFile(file);
      const { validBytes, bad } = readSegment(buf, records, options.maxRecordBytes);
      lastSize = validBytes;
      if (bad === null) continue;
      const isLast = i === segments.length - 1;
      if (!isLast || findValidRecordAfter(buf, bad.offset, options.maxRecordBytes)) {
        throw new WalCorruptionError(file, bad.offset, bad.reason);
      }
      options.logger.warn('raft WAL torn tail truncated', {
        file,
        offset: bad.offset,
        droppedBytes: buf.length - bad.offset,
        reason: bad.reason,
      });
      const fh = await open(file, 'r+');
      try {
        await fh.truncate(bad.offset);
        await fh.datasync();
      } finally {
        await fh.close();
      }
    }
    if (segments.length === 0) {
      segments.push(1);
      lastSize = 0;
    }
    const current = segments[segments.length - 1]!;
    const handle = await open(path.join(dir, segmentName(current)), 'a');
    await handle.datasync();
    await fsyncDirectory(dir);
    return { wal: new Wal(dir, options, segments, handle, lastSize), records };
  }

  /** Appends the records with one write; `sync` makes them durable with one datasync. */
  async append(records: WalRecord[], sync = true): Promise<void> {
    this.throwIfFailed();
    if (records.length === 0) return;
    if (this.segmentSize >= this.options.segmentBytes) await this.startSegment();
    const buf = Buffer.concat(records.map((r) => encodeRecord(r, this.options.maxRecordBytes)));
    await this.guard(async () => {
      await this.handle.write(buf);
      if (sync) await this.handle.datasync();
    });
    this.segmentSize += buf.length;
  }

  /**
   * Writes `records` (the whole live state) to a fresh segment, makes it durable,
   * then deletes every older segment. A crash in between leaves old segments
   * whose replay the fresh segment supersedes.
   */
  async compact(records: WalRecord[]): Promise<void> {
    this.throwIfFailed();
    const older = this.segments.slice();
    await this.startSegment();
    await this.append(records);
    await this.guard(async () => {
      for (const seq of older) await rm(path.join(this.dir, segmentName(seq)));
      await fsyncDirectory(this.dir);
    });
    this.segments = this.segments.filter((seq) => !older.includes(seq));
  }

  segmentCount(): number {
    return this.segments.length;
  }

  async close(): Promise<void> {
    await this.handle.close();
  }

  private async startSegment(): Promise<void> {
    const seq = this.segments[this.segments.length - 1]! + 1;
    await this.guard(async () => {
      // Unsynced appends in the old segment must be durable before any record
      // lands in the new one, or a crash could tear a segment that is not the last.
      await this.handle.datasync();
      const next = await open(path.join(this.dir, segmentName(seq)), 'a');
      await this.handle.close();
      this.handle = next;
      await fsyncDirectory(this.dir);
    });
    this.segments.push(seq);
    this.segmentSize = 0;
  }

  // An fsync or write failure leaves the file in an unknown state (the kernel may
  // have dropped dirty pages): never retry, fail every later call.
  private async guard(io: () => Promise<void>): Promise<void> {
    try {
      await io();
    } catch (error) {
      this.failed = error instanceof Error ? error : new Error(String(error));
      throw this.failed;
    }
  }

  private throwIfFailed(): void {
    if (this.failed !== null)
      throw new Error(`raft WAL unusable after an IO failure: ${this.failed.message}`);
  }
}

function readSegment(
  buf: Buffer,
  into: WalRecord[],
  maxRecordBytes: number,
): { validBytes: number; bad: { offset: number; reason: string } | null } {
  let offset = 0;
  while (offset < buf.length) {
    const result = decodeRecordAt(buf, offset, maxRecordBytes);
    if (!result.ok) return { validBytes: offset, bad: { offset, reason: result.reason } };
    into.push(result.record);
    offset = result.nextOffset;
  }
  return { validBytes: offset, bad: null };
}

// A crash tears only the last write, so nothing valid can follow a torn record.
// A valid record anywhere after the bad one means the bad one is damage.
function findValidRecordAfter(buf: Buffer, badOffset: number, maxRecordBytes: number): boolean {
  for (let offset = badOffset + 1; offset + RECORD_HEADER_BYTES <= buf.length; offset++) {
    if (decodeRecordAt(buf, offset, maxRecordBytes).ok) return true;
  }
  return false;
}
