// Durable Raft state for one node: the WAL plus the snapshot file, with the
// live log mirrored in memory (the group's log is small: fencing decisions,
// compacted behind snapshots). Recovery rebuilds exactly what was fsynced.
import path from 'node:path';
import type { Logger } from '../../log.ts';
import {
  decodeEntries,
  decodeHardState,
  decodeSnapshotMetadata,
  encodeEntries,
  encodeHardState,
  encodeSnapshotMetadata,
} from '../codec.ts';
import type {
  ConfState,
  Entry,
  HardState,
  InitialState,
  Ready,
  Snapshot,
  SnapshotMetadata,
} from '../core/types.ts';
import { RECORD_HEADER_BYTES, RecordType, type WalRecord } from './record.ts';
import { readSnapshotFile, writeSnapshotFile } from './snapshot-file.ts';
import { Wal } from './wal.ts';

export interface FileStorageOptions {
  logger: Logger;
  maxRecordBytes?: number;
  segmentBytes?: number;
}

const DEFAULT_MAX_RECORD_BYTES = 16 * 1024 * 1024;
const DEFAULT_SEGMENT_BYTES = 4 * 1024 * 1024;
const EMPTY_HARD_STATE: HardState = { term: 0, vote: '', commit: 0 };

export class FileStorage {
  private constructor(
    private readonly dir: string,
    private readonly wal: Wal,
    private readonly maxRecordBytes: number,
    private hard: HardState,
    private snap: Snapshot | undefined,
    /** Entries after the snapshot (or from index 1), contiguous. */
    private log: Entry[],
  ) {}

  static async open(dir: string, options: FileStorageOptions): Promise<FileStorage> {
    const maxRecordBytes = options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
    const snapshot = await readSnapshotFile(dir);
    const { wal, records } = await Wal.open(path.join(dir, 'wal'), {
      logger: options.logger,
      maxRecordBytes,
      segmentBytes: options.segmentBytes ?? DEFAULT_SEGMENT_BYTES,
    });
    const replayed = replay(records);
    const markIndex = replayed.mark?.index ?? 0;
    const snapIndex = snapshot?.metadata.index ?? 0;
    if (snapIndex < markIndex) {
      throw new Error(
        `raft storage inconsistent in ${dir}: the WAL marks a snapshot at index ${markIndex} but the ` +
          `snapshot file is at ${snapIndex}; refusing to start.`,
      );
    }
    let log = replayed.log;
    // The snapshot file is renamed into place before its WAL mark is written; a
    // crash in between leaves a newer snapshot than the WAL knows about.
    if (snapshot !== undefined && snapIndex > markIndex) {
      const at = log.find((e) => e.index === snapIndex);
      log =
        at !== undefined && at.term === snapshot.metadata.term ? log.filter((e) => e.index > snapIndex) : [];
    }
    const hard = { ...replayed.hard };
    if (hard.commit < snapIndex) hard.commit = snapIndex;
    return new FileStorage(dir, wal, maxRecordBytes, hard, snapshot, log);
  }

  /** What the core boots from; `confState` is the bootstrap membership when there is no snapshot. */
  initialState(confState: ConfState): InitialState {
    return {
      hardState: { ...this.hard },
      ...(this.snap !== undefined ? { snapshot: this.snap } : {}),
      entries: this.log.slice(),
      confState,
    };
  }

  /** Persists a Ready's snapshot, entries and hard state: one write, one datasync. */
  async persist(ready: Pick<Ready, 'hardState' | 'entries' | 'snapshot' | 'mustSync'>): Promise<void> {
    const records: WalRecord[] = [];
    if (ready.snapshot !== undefined) {
      // The file first: a WAL mark must never point at a snapshot that is not on disk.
      await writeSnapshotFile(this.dir, ready.snapshot);
      this.snap = ready.snapshot;
      this.log = [];
      records.push(markRecord(ready.snapshot.metadata));
    }
    if (ready.entries.length > 0) {
      const first = ready.entries[0]!.index;
      if (first <= this.lastIndex()) {
        records.push(truncateRecord(first));
        this.log = this.log.filter((e) => e.index < first);
      }
      this.appendInMemory(ready.entries);
      records.push(...this.entryRecords(ready.entries));
    }
    if (ready.hardState !== undefined) {
      this.hard = { ...ready.hardState };
      records.push({ type: RecordType.HardState, payload: encodeHardState(ready.hardState) });
    }
    await this.wal.append(records, ready.mustSync);
  }

  /**
   * Saves a snapshot the application took at `snapshot.metadata.index` (already
   * applied) and compacts: the WAL is rewritten to the live state and older
   * segments are deleted.
   */
  async saveSnapshot(snapshot: Snapshot): Promise<void> {
    const { index, term } = snapshot.metadata;
    if (index <= (this.snap?.metadata.index ?? 0)) return;
    if (index > this.hard.commit)
      throw new Error(`snapshot at ${index} is past the commit index ${this.hard.commit}`);
    const stored = this.term(index);
    if (stored !== term)
      throw new Error(`snapshot at ${index} claims term ${term} but the log has ${stored}`);
    await writeSnapshotFile(this.dir, snapshot);
    this.snap = snapshot;
    this.log = this.log.filter((e) => e.index > index);
    await this.wal.compact([
      { type: RecordType.HardState, payload: encodeHardState(this.hard) },
      markRecord(snapshot.metadata),
      ...this.entryRecords(this.log),
    ]);
  }

  hardState(): HardState {
    return { ...this.hard };
  }

  snapshot(): Snapshot | undefined {
    return this.snap;
  }

  entries(): readonly Entry[] {
    return this.log;
  }

  firstIndex(): number {
    return (this.snap?.metadata.index ?? 0) + 1;
  }

  lastIndex(): number {
    return this.log.length > 0 ? this.log[this.log.length - 1]!.index : this.firstIndex() - 1;
  }

  /** Term of the entry at `index`, or undefined when it is compacted away or beyond the log. */
  term(index: number): number | undefined {
    if (this.snap !== undefined && index === this.snap.metadata.index) return this.snap.metadata.term;
    if (index === 0) return 0;
    return this.log[index - this.firstIndex()]?.term;
  }

  segmentCount(): number {
    return this.wal.segmentCount();
  }

  async close(): Promise<void> {
    await this.wal.close();
  }

  private appendInMemory(entries: readonly Entry[]): void {
    let expected = this.lastIndex() + 1;
    for (const e of entries) {
      if (e.index !== expected)
        throw new Error(`raft storage: entry ${e.index} appended where ${expected} was due`);
      expected++;
    }
    this.log.push(...entries);
  }

  // Splits entries into records under the size cap; one entry never spans records.
  private entryRecords(entries: readonly Entry[]): WalRecord[] {
    const records: WalRecord[] = [];
    let batch: Entry[] = [];
    let batchBytes = 0;
    const flush = () => {
      if (batch.length > 0) records.push({ type: RecordType.Entries, payload: encodeEntries(batch) });
      batch = [];
      batchBytes = 0;
    };
    for (const e of entries) {
      const size = e.data.length + 32;
      if (size + RECORD_HEADER_BYTES > this.maxRecordBytes) {
        throw new Error(`raft entry ${e.index} of ${e.data.length} bytes exceeds the WAL record cap`);
      }
      if (batchBytes + size > this.maxRecordBytes) flush();
      batch.push(e);
      batchBytes += size;
    }
    flush();
    return records;
  }
}

function markRecord(metadata: SnapshotMetadata): WalRecord {
  return { type: RecordType.SnapshotMark, payload: encodeSnapshotMetadata(metadata) };
}

function truncateRecord(fromIndex: number): WalRecord {
  const payload = Buffer.allocUnsafe(8);
  payload.writeBigUInt64BE(BigInt(fromIndex), 0);
  return { type: RecordType.Truncate, payload };
}

interface Replayed {
  hard: HardState;
  mark: SnapshotMetadata | undefined;
  log: Entry[];
}

// Records replay in order; a SNAPSHOT_MARK empties the log (what follows it,
// in a compacted segment or after an installed snapshot, re-adds the live tail).
function replay(records: readonly WalRecord[]): Replayed {
  let hard = EMPTY_HARD_STATE;
  let mark: SnapshotMetadata | undefined;
  let log: Entry[] = [];
  const lastIndex = () => (log.length > 0 ? log[log.length - 1]!.index : (mark?.index ?? 0));
  for (const record of records) {
    switch (record.type) {
      case RecordType.HardState:
        hard = decodeHardState(record.payload);
        break;
      case RecordType.SnapshotMark:
        mark = decodeSnapshotMetadata(record.payload);
        log = [];
        break;
      case RecordType.Truncate: {
        const from = Number(Buffer.from(record.payload).readBigUInt64BE(0));
        log = log.filter((e) => e.index < from);
        break;
      }
      case RecordType.Entries:
        for (const e of decodeEntries(record.payload)) {
          if (e.index !== lastIndex() + 1) {
            throw new Error(
              `raft WAL replay: entry ${e.index} follows ${lastIndex()}; the log is not contiguous`,
            );
          }
          log.push(e);
        }
        break;
    }
  }
  return { hard, mark, log };
}
