// removeStaleLockFile: a postmaster.pid left by a killed postmaster is removed before
// a start, whether its pid is gone, a zombie not yet reaped (seen after kill -9 of a
// whole node: the restarted sidecar's PostgreSQL refused "lock file already exists")
// or reused by an unrelated process; the lock of a live postmaster of this data dir
// is kept. No PostgreSQL needed: stand-in processes play the postmaster.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { isAlive, removeStaleLockFile } from '../../src/postgres/instance.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';
import { waitFor } from '../support/wait.ts';

function dataDirWithLock(t: { after(fn: () => void): void }, pid: number): string {
  const dir = makeTempDir('pgward-lock-');
  t.after(() => removeTempDir(dir));
  const dataDir = path.join(dir, 'pgdata');
  mkdirSync(dataDir);
  writeFileSync(path.join(dataDir, 'postmaster.pid'), `${pid}\n${dataDir}\n`);
  return dataDir;
}

const lockOf = (dataDir: string) => path.join(dataDir, 'postmaster.pid');

test('a lock naming a pid that no longer exists is removed', (t) => {
  const dataDir = dataDirWithLock(t, 2 ** 22 + 12345);
  assert.equal(removeStaleLockFile(dataDir), 2 ** 22 + 12345);
  assert.equal(existsSync(lockOf(dataDir)), false);
});

test('no lock file: nothing to do', (t) => {
  const dataDir = dataDirWithLock(t, 1);
  removeStaleLockFile(dataDir);
  assert.equal(removeStaleLockFile(dataDir), null);
});

test('a lock naming a zombie (killed, not yet reaped) is removed', async (t) => {
  // `sleep 0 &` exits at once, and its parent then execs into a sleep that never waits
  // for it: a zombie with a known pid for as long as the outer sleep runs.
  const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 30'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  t.after(() => parent.kill('SIGKILL'));
  const zombie = await new Promise<number>((resolve) =>
    parent.stdout.once('data', (d) => resolve(Number(d))),
  );
  await waitFor(
    () => {
      try {
        process.kill(zombie, 0);
        return !isAlive(zombie);
      } catch {
        return false;
      }
    },
    { timeoutMs: 10_000, what: 'the child to become a zombie' },
  );
  const dataDir = dataDirWithLock(t, zombie);
  assert.equal(removeStaleLockFile(dataDir), zombie);
  assert.equal(existsSync(lockOf(dataDir)), false);
});

test('a lock naming a live unrelated process (pid reused) is removed', (t) => {
  const dataDir = dataDirWithLock(t, process.pid);
  assert.equal(removeStaleLockFile(dataDir), process.pid);
  assert.equal(existsSync(lockOf(dataDir)), false);
});

test('the lock of a live postmaster of this data dir is kept', async (t) => {
  const dataDir = dataDirWithLock(t, 1);
  // A stand-in whose command line reads like `postgres -D <dataDir>`.
  const fake = path.join(path.dirname(dataDir), 'postgres');
  symlinkSync(process.execPath, fake);
  const child = spawn(fake, ['-e', 'setTimeout(() => {}, 30000)', '-D', dataDir], { stdio: 'ignore' });
  t.after(() => child.kill('SIGKILL'));
  const pid = child.pid;
  assert.ok(pid !== undefined);
  writeFileSync(lockOf(dataDir), `${pid}\n${dataDir}\n`);
  await waitFor(() => isAlive(pid), { timeoutMs: 10_000, what: 'the stand-in postmaster' });
  assert.equal(removeStaleLockFile(dataDir), null);
  assert.equal(existsSync(lockOf(dataDir)), true);
});
