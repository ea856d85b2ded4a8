// The latest snapshot, one file: [u32 crc32][encoded snapshot]. Replaced
// atomically: write a temp file, fsync it, rename it over the old one, fsync
// the directory, so a crash leaves either the old snapshot or the new one.
import { open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { decodeSnapshot, encodeSnapshot } from '../codec.ts';
import type { Snapshot } from '../core/types.ts';
import { fsyncDirectory } from './fsync.ts';

const FILE = 'snapshot.bin';
const TEMP = 'snapshot.bin.tmp';

export async function readSnapshotFile(dir: string): Promise<Snapshot | undefined> {
  // A temp file is a write that never got renamed: the crash happened before it counted.
  await rm(path.join(dir, TEMP), { force: true });
  const file = path.join(dir, FILE);
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  if (buf.length < 4 || crc32(buf.subarray(4)) !== buf.readUInt32BE(0)) {
    throw new Error(
      `raft snapshot corrupt: ${file} fails its checksum; refusing to start. Remove this member from the ` +
        'group, wipe its raft data directory and add it back.',
    );
  }
  return decodeSnapshot(buf.subarray(4));
}

export async function writeSnapshotFile(dir: string, snapshot: Snapshot): Promise<void> {
  const body = encodeSnapshot(snapshot);
  const header = Buffer.allocUnsafe(4);
  header.writeUInt32BE(crc32(body), 0);
  const temp = path.join(dir, TEMP);
  const handle = await open(temp, 'w');
  try {
    await handle.writev([header, body]);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, path.join(dir, FILE));
  await fsyncDirectory(dir);
}
