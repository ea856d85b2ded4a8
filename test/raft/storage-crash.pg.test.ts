// Real process crash: kill -9 a process in the middle of WAL appends, reopen,
// and find every acknowledged (fsynced) entry, intact and contiguous.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { test } from 'node:test';
import { silentLogger } from '../../src/log.ts';
import { FileStorage } from '../../src/raft/storage/file-storage.ts';
import { waitFor } from '../support/wait.ts';

const WRITER = path.join(import.meta.dirname, 'support', 'wal-writer.ts');

async function crashWhileWriting(dir: string, minAcked: number): Promise<number> {
  const child = spawn(process.execPath, ['--import', 'tsx', WRITER, dir], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  try {
    let acked = 0;
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      acked = Number(line);
    });
    await waitFor(() => acked >= minAcked, { timeoutMs: 30_000, what: `${minAcked} acknowledged appends` });
    child.kill('SIGKILL');
    await exited;
    return acked;
  } finally {
    child.kill('SIGKILL');
  }
}

test('kill -9 during appends loses nothing that was acknowledged, over two crashes', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pgward-raft-crash-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  let floor = 0;
  for (let crash = 1; crash <= 2; crash++) {
    const acked = await crashWhileWriting(dir, floor + 50);
    const storage = await FileStorage.open(dir, { logger: silentLogger() });
    const entries = storage.entries();
    assert.ok(
      storage.lastIndex() >= acked,
      `crash ${crash}: last index ${storage.lastIndex()} < acked ${acked}`,
    );
    entries.forEach((e, i) => {
      assert.equal(e.index, i + 1);
      assert.equal(e.data.length, 64 + (e.index % 200));
      assert.ok(
        e.data.every((b) => b === e.index % 251),
        `entry ${e.index} intact`,
      );
    });
    assert.ok(storage.hardState().commit >= acked);
    assert.ok(storage.segmentCount() > 1, 'the run spans several segments');
    floor = storage.lastIndex();
    await storage.close();
  }
});
