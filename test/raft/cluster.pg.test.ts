// Real processes: three Raft members over TCP on loopback, with real fsync.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { decodeRecordAt } from '../../src/raft/storage/record.ts';
import { freePorts } from '../support/ports.ts';
import { waitFor } from '../support/wait.ts';
import { ProcessCluster } from './support/process-cluster.ts';

// Upper bounds for a loaded 2-core machine, never sleeps.
const startMs = 60_000;
const electionMs = 30_000;

// One group serves both tests: process start-up dominates the cost on a loaded machine.
let root = '';
let c: ProcessCluster;

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'pgward-raft-cluster-'));
  const ids = ['n1', 'n2', 'n3'];
  const ports = await freePorts(ids.length);
  c = new ProcessCluster(root, new Map(ids.map((id, i) => [id, ports[i]!])), undefined, 4);
  await c.startAll(startMs);
});

after(async () => {
  await c?.stopAll();
  if (root !== '') await rm(root, { recursive: true, force: true });
});

test('kill -9 of the leader elects another; the restarted node rejoins as a follower with its log intact', async () => {
  const [firstId, first] = await c.leader(electionMs);
  for (let i = 1; i <= 6; i++) await first.propose(`a${i}`);
  const { commit: committedBefore } = await first.status();
  await first.kill9();

  const [secondId, second] = await c.leader(electionMs, { exclude: firstId });
  assert.notEqual(secondId, firstId);
  await second.propose('b1');

  const restarted = c.spawn(firstId);
  const started = await restarted.started(startMs);
  // Before hearing from any peer, its own disk gives back every entry it committed.
  assert.ok(
    started.status.commit >= committedBefore,
    `recovered commit ${started.status.commit} < ${committedBefore} committed before the kill`,
  );
  const expected = ['a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'b1'];
  const caughtUp = await waitFor(
    async () => {
      const s = await restarted.status();
      return s.leader === secondId && s.applied.join() === expected.join() ? s : undefined;
    },
    { timeoutMs: electionMs, what: 'the restarted node to follow the new leader and apply every entry' },
  );
  assert.equal(caughtUp.role, 'follower');
  for (const node of c.nodes.values()) assert.deepStrictEqual((await node.status()).applied, expected);
});

test('a corrupted WAL record followed by good ones refuses to start, naming the file and offset', async () => {
  const [, leader] = await c.leader(electionMs);
  const victimId = [...c.nodes.keys()].find((id) => c.nodes.get(id) !== leader)!;
  const walDir = path.join(c.dataDir(victimId), 'wal');
  /**
   * The victim's newest WAL segment holding at least three records (a segment just
   * opened by a rotation may hold fewer), and where each of its records starts.
   */
  const lastSegment = async () => {
    const segments = (await readdir(walDir)).sort().reverse();
    let newest: { file: string; bytes: Buffer; starts: number[] } | null = null;
    for (const name of segments) {
      const file = path.join(walDir, name);
      const bytes = await readFile(file);
      const starts: number[] = [];
      for (let offset = 0; offset < bytes.length; ) {
        const decoded = decodeRecordAt(bytes, offset, 1 << 24);
        assert.ok(decoded.ok, `record at ${offset} of the intact WAL`);
        starts.push(offset);
        offset = decoded.nextOffset;
      }
      newest ??= { file, bytes, starts };
      if (starts.length >= 3) return { file, bytes, starts };
    }
    return newest!;
  };
  // A segment that was just rotated holds fewer than three records: propose until the
  // newest one has a record with good ones after it (bounded).
  for (let i = 1; i <= 50; i++) {
    await leader.propose(`c${i}`);
    const total = (await leader.status()).applied.length;
    await waitFor(async () => (await c.nodes.get(victimId)!.status()).applied.length === total, {
      timeoutMs: electionMs,
      what: 'the victim to apply the entries',
    });
    if (i >= 3 && (await lastSegment()).starts.length >= 3) break;
  }
  await c.nodes.get(victimId)!.kill9();

  const { file, bytes, starts } = await lastSegment();
  assert.ok(starts.length >= 3, `need a record with good ones after it, found ${starts.length} records`);
  const victimRecord = starts[1]!;
  bytes[victimRecord + 9]! ^= 0xff;
  await writeFile(file, bytes);

  const broken = c.spawn(victimId);
  const exit = await broken.exited;
  assert.equal(exit.code, 2);
  assert.match(broken.stderr, new RegExp(`${file.replaceAll('/', '\\/')} at byte ${victimRecord}`));
  assert.match(broken.stderr, /refusing to start/);
});
