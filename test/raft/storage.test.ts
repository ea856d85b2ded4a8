import assert from 'node:assert/strict';
import { cp, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { silentLogger } from '../../src/log.ts';
import type { ConfState, Entry, Snapshot } from '../../src/raft/core/types.ts';
import { FileStorage } from '../../src/raft/storage/file-storage.ts';
import { decodeRecordAt, RecordType } from '../../src/raft/storage/record.ts';
import { writeSnapshotFile } from '../../src/raft/storage/snapshot-file.ts';
import { WalCorruptionError } from '../../src/raft/storage/wal.ts';

const logger = silentLogger();
const conf: ConfState = { voters: ['a', 'b', 'c'], witnesses: [], learners: [] };

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pgward-raft-storage-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function entry(index: number, term: number, text = `e${index}`): Entry {
  return { index, term, type: 'normal', data: Buffer.from(text) };
}

function plain(entries: readonly Entry[]): Array<[number, number, string]> {
  return entries.map((e) => [e.index, e.term, Buffer.from(e.data).toString()]);
}

async function segmentFiles(dir: string): Promise<string[]> {
  return (await readdir(path.join(dir, 'wal'))).sort().map((f) => path.join(dir, 'wal', f));
}

function recordsOf(buf: Buffer): Array<{ start: number; end: number; type: RecordType }> {
  const records: Array<{ start: number; end: number; type: RecordType }> = [];
  for (let offset = 0; offset < buf.length; ) {
    const decoded = decodeRecordAt(buf, offset, 1 << 20);
    assert.ok(decoded.ok);
    records.push({ start: offset, end: decoded.nextOffset, type: decoded.record.type });
    offset = decoded.nextOffset;
  }
  return records;
}

/** Writes five single-entry Readies with hard states; returns the file sizes after each one. */
async function writeFive(dir: string): Promise<number[]> {
  const storage = await FileStorage.open(dir, { logger });
  const sizes: number[] = [];
  for (let i = 1; i <= 5; i++) {
    await storage.persist({
      entries: [entry(i, 1)],
      hardState: { term: 1, vote: 'a', commit: i - 1 },
      mustSync: true,
    });
    const [file] = await segmentFiles(dir);
    sizes.push((await readFile(file!)).length);
  }
  await storage.close();
  return sizes;
}

test('a fresh directory boots empty', async (t) => {
  const dir = await tempDir(t);
  const storage = await FileStorage.open(dir, { logger });
  t.after(() => storage.close());
  assert.deepStrictEqual(storage.initialState(conf), {
    hardState: { term: 0, vote: '', commit: 0 },
    entries: [],
    confState: conf,
  });
});

test('entries, truncation and hard state survive a reopen', async (t) => {
  const dir = await tempDir(t);
  const first = await FileStorage.open(dir, { logger });
  await first.persist({ entries: [entry(1, 1), entry(2, 1), entry(3, 1)], mustSync: true });
  await first.persist({ hardState: { term: 2, vote: 'b', commit: 1 }, entries: [], mustSync: true });
  // A new leader overwrites the conflicting suffix from index 2 (paper §5.3).
  await first.persist({ entries: [entry(2, 2, 'x'), entry(3, 2, 'y')], mustSync: true });
  await first.persist({
    entries: [entry(4, 2)],
    hardState: { term: 2, vote: 'b', commit: 3 },
    mustSync: false,
  });
  await first.close();
  const second = await FileStorage.open(dir, { logger });
  t.after(() => second.close());
  const state = second.initialState(conf);
  assert.deepStrictEqual(state.hardState, { term: 2, vote: 'b', commit: 3 });
  assert.deepStrictEqual(plain(state.entries), [
    [1, 1, 'e1'],
    [2, 2, 'x'],
    [3, 2, 'y'],
    [4, 2, 'e4'],
  ]);
  assert.equal(second.term(3), 2);
  assert.equal(second.lastIndex(), 4);
});

test('a torn tail at every byte offset is cut back to the last whole record', async (t) => {
  const root = await tempDir(t);
  const dir = path.join(root, 'original');
  await writeFive(dir);
  const [file] = await segmentFiles(dir);
  const records = recordsOf(await readFile(file!));
  for (let cut = 0; cut < records.at(-1)!.end; cut++) {
    const copy = path.join(root, `cut-${cut}`);
    await cp(dir, copy, { recursive: true });
    const [copied] = await segmentFiles(copy);
    await truncate(copied!, cut);
    const storage = await FileStorage.open(copy, { logger });
    const whole = records.filter((r) => r.end <= cut);
    assert.equal(
      storage.lastIndex(),
      whole.filter((r) => r.type === RecordType.Entries).length,
      `cut at ${cut}`,
    );
    await storage.close();
    assert.equal(
      (await readFile(copied!)).length,
      whole.at(-1)?.end ?? 0,
      `file trimmed after cut at ${cut}`,
    );
    await rm(copy, { recursive: true });
  }
});

test('a torn tail of garbage or zeros is cut off', async (t) => {
  const dir = await tempDir(t);
  const sizes = await writeFive(dir);
  const [file] = await segmentFiles(dir);
  for (const tail of [Buffer.alloc(4096), Buffer.from('garbage that is not a record at all')]) {
    await writeFile(file!, tail, { flag: 'a' });
    const storage = await FileStorage.open(dir, { logger });
    assert.equal(storage.lastIndex(), 5);
    await storage.close();
    assert.equal((await readFile(file!)).length, sizes[4]);
  }
});

test('a damaged record followed by valid ones refuses to start, naming the file and offset', async (t) => {
  const dir = await tempDir(t);
  await writeFive(dir);
  const [file] = await segmentFiles(dir);
  const pristine = await readFile(file!);
  const recordStarts = recordsOf(pristine).map((r) => r.start);
  // Every byte of every record but the last (whose damage looks like a torn write).
  for (let offset = 0; offset < recordStarts.at(-1)!; offset++) {
    const damaged = Buffer.from(pristine);
    damaged[offset]! ^= 0x40;
    await writeFile(file!, damaged);
    const recordStart = recordStarts.filter((start) => start <= offset).at(-1)!;
    await assert.rejects(FileStorage.open(dir, { logger }), (error: unknown) => {
      assert.ok(error instanceof WalCorruptionError, `flip at ${offset}: ${String(error)}`);
      assert.equal(error.file, file);
      assert.equal(error.offset, recordStart, `flip at ${offset}`);
      assert.match(error.message, new RegExp(`${path.basename(file!)} at byte ${recordStart}`));
      return true;
    });
  }
});

test('a snapshot compacts the WAL down to one segment and survives a reopen', async (t) => {
  const dir = await tempDir(t);
  const storage = await FileStorage.open(dir, { logger, segmentBytes: 200 });
  for (let i = 1; i <= 40; i++) {
    await storage.persist({
      entries: [entry(i, 1)],
      hardState: { term: 1, vote: 'a', commit: i },
      mustSync: true,
    });
  }
  assert.ok(storage.segmentCount() > 3, `expected several segments, got ${storage.segmentCount()}`);
  const snapshot: Snapshot = {
    metadata: { index: 30, term: 1, confState: conf },
    data: Buffer.from('state@30'),
  };
  await storage.saveSnapshot(snapshot);
  assert.equal(storage.segmentCount(), 1);
  assert.equal((await segmentFiles(dir)).length, 1);
  await storage.close();
  const reopened = await FileStorage.open(dir, { logger });
  t.after(() => reopened.close());
  const state = reopened.initialState(conf);
  assert.equal(Buffer.from(state.snapshot!.data).toString(), 'state@30');
  assert.deepStrictEqual(
    state.entries.map((e) => e.index),
    Array.from({ length: 10 }, (_, i) => 31 + i),
  );
  assert.equal(reopened.firstIndex(), 31);
  assert.equal(reopened.term(30), 1);
});

test('a snapshot from the leader replaces the whole log', async (t) => {
  const dir = await tempDir(t);
  const storage = await FileStorage.open(dir, { logger });
  await storage.persist({ entries: [entry(1, 1), entry(2, 1)], mustSync: true });
  const snapshot: Snapshot = { metadata: { index: 50, term: 4, confState: conf }, data: Buffer.from('s50') };
  await storage.persist({
    snapshot,
    entries: [entry(51, 4)],
    hardState: { term: 4, vote: '', commit: 50 },
    mustSync: true,
  });
  await storage.close();
  const reopened = await FileStorage.open(dir, { logger });
  t.after(() => reopened.close());
  const state = reopened.initialState(conf);
  assert.equal(state.snapshot?.metadata.index, 50);
  assert.deepStrictEqual(plain(state.entries), [[51, 4, 'e51']]);
});

test('a crash between the snapshot rename and its WAL mark keeps the newer snapshot', async (t) => {
  const dir = await tempDir(t);
  const storage = await FileStorage.open(dir, { logger });
  await storage.persist({
    entries: [entry(1, 1), entry(2, 1), entry(3, 1)],
    hardState: { term: 1, vote: 'a', commit: 1 },
    mustSync: true,
  });
  await storage.close();
  await writeSnapshotFile(dir, { metadata: { index: 2, term: 1, confState: conf }, data: Buffer.from('s2') });
  const reopened = await FileStorage.open(dir, { logger });
  t.after(() => reopened.close());
  const state = reopened.initialState(conf);
  assert.deepStrictEqual(plain(state.entries), [[3, 1, 'e3']]);
  assert.equal(state.hardState.commit, 2, 'a snapshot only holds committed state');
});

test('a snapshot file that fails its checksum refuses to start', async (t) => {
  const dir = await tempDir(t);
  await writeSnapshotFile(dir, { metadata: { index: 2, term: 1, confState: conf }, data: Buffer.from('s2') });
  const file = path.join(dir, 'snapshot.bin');
  const bytes = await readFile(file);
  bytes[bytes.length - 1]! ^= 1;
  await writeFile(file, bytes);
  await assert.rejects(FileStorage.open(dir, { logger }), /snapshot corrupt: .*snapshot\.bin/);
});

test('after a failed write or fsync the WAL refuses every later append instead of retrying', async (t) => {
  const dir = await tempDir(t);
  const storage = await FileStorage.open(dir, { logger });
  await storage.persist({ entries: [entry(1, 1)], mustSync: true });
  // Closing the file under the WAL makes the next write fail as a dying disk would.
  await storage.close();
  await assert.rejects(storage.persist({ entries: [entry(2, 1)], mustSync: true }));
  await assert.rejects(
    storage.persist({ entries: [entry(3, 1)], mustSync: true }),
    /unusable after an IO failure/,
  );
});
