import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { silentLogger } from '../../src/log.ts';
import type { NodeId } from '../../src/raft/core/types.ts';
import { ProposalRejectedError, RaftDriver, type RaftTiming } from '../../src/raft/driver.ts';
import type { PeerAddress } from '../../src/raft/transport/tcp.ts';
import { freePorts } from '../support/ports.ts';
import { waitFor } from '../support/wait.ts';
import { MemoryStateMachine } from './support/memory-state-machine.ts';

const timing: RaftTiming = {
  tickMs: 50,
  heartbeatTicks: 2,
  electionTicks: 10,
  maxClockDrift: 0.01,
  leaseMs: 400,
  leaseStopMarginMs: 100,
};
const timeoutMs = 30_000;
const ids = ['n1', 'n2', 'n3'];

interface Member {
  driver: RaftDriver;
  sm: MemoryStateMachine;
  clockOffsetMs: { value: number };
}

class LocalCluster {
  readonly members = new Map<NodeId, Member>();

  private constructor(
    private readonly root: string,
    private readonly addresses: Map<NodeId, PeerAddress>,
  ) {}

  static async create(t: { after(fn: () => Promise<void>): void }): Promise<LocalCluster> {
    const root = await mkdtemp(path.join(os.tmpdir(), 'pgward-raft-driver-'));
    const ports = await freePorts(ids.length);
    const addresses = new Map(ids.map((id, i) => [id, { host: '127.0.0.1', port: ports[i]! }]));
    const cluster = new LocalCluster(root, addresses);
    t.after(async () => {
      await Promise.all([...cluster.members.values()].map((m) => m.driver.stop()));
      await rm(root, { recursive: true, force: true });
    });
    for (const id of ids) await cluster.start(id);
    return cluster;
  }

  async start(id: NodeId): Promise<Member> {
    const sm = new MemoryStateMachine();
    const clockOffsetMs = { value: 0 };
    const driver = new RaftDriver({
      id,
      timing,
      dataDir: path.join(this.root, id),
      bootstrap: { voters: ids, witnesses: [], learners: [] },
      listen: this.addresses.get(id)!,
      peers: new Map([...this.addresses].filter(([peer]) => peer !== id)),
      clusterId: 'driver-test',
      secret: 'driver-test-secret-0123456789',
      logger: silentLogger(),
      stateMachine: sm,
      snapshotEveryEntries: 5,
      clock: () => performance.now() + clockOffsetMs.value,
    });
    await driver.start();
    const member = { driver, sm, clockOffsetMs };
    this.members.set(id, member);
    return member;
  }

  async stop(id: NodeId): Promise<void> {
    await this.members.get(id)!.driver.stop();
    this.members.delete(id);
  }

  /**
   * The one member that leads, once there is exactly one. The role, not the
   * lease: on an overloaded machine stalls keep voiding leases (by design).
   */
  async leader(what = 'a leader'): Promise<[NodeId, Member]> {
    return waitFor(
      () => {
        const leaders = [...this.members].filter(([, m]) => m.driver.status().role === 'leader');
        return leaders.length === 1 ? leaders[0]! : undefined;
      },
      { timeoutMs, what },
    );
  }

  async allApplied(expected: string[]): Promise<void> {
    await waitFor(() => [...this.members.values()].every((m) => m.sm.applied.join() === expected.join()), {
      timeoutMs,
      what: `every member to apply ${expected.length} entries`,
    });
  }
}

const texts = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `x${from + i}`);

test('three drivers elect one leader, commit proposals everywhere, and followers refuse proposals', async (t) => {
  const cluster = await LocalCluster.create(t);
  const [leaderId, leader] = await cluster.leader();
  const indexes: number[] = [];
  for (const text of texts(1, 12)) indexes.push(await leader.driver.propose(Buffer.from(text)));
  assert.deepStrictEqual(
    indexes,
    [...indexes].sort((a, b) => a - b),
  );
  await cluster.allApplied(texts(1, 12));
  const follower = [...cluster.members].find(([id]) => id !== leaderId)![1];
  await assert.rejects(
    follower.driver.propose(Buffer.from('nope')),
    (error: unknown) => error instanceof ProposalRejectedError && error.reason === 'notLeader',
  );
  const status = leader.driver.status();
  assert.equal(status.role, 'leader');
  assert.ok(status.driver.snapshotsTaken >= 1, 'snapshots every 5 entries');
});

test('a stopped leader is replaced; restarted, it rejoins as a follower with its log intact', async (t) => {
  const cluster = await LocalCluster.create(t);
  const [firstId, first] = await cluster.leader();
  for (const text of texts(1, 7)) await first.driver.propose(Buffer.from(text));
  await cluster.allApplied(texts(1, 7));
  const firstTerm = first.driver.status().term;
  await cluster.stop(firstId);

  const [secondId, second] = await cluster.leader('a new leader');
  assert.notEqual(secondId, firstId);
  assert.ok(second.driver.status().term > firstTerm);
  for (const text of texts(8, 9)) await second.driver.propose(Buffer.from(text));

  const restarted = await cluster.start(firstId);
  // It recovers its log and commit index from disk before hearing from anyone (no-op + x1..x7).
  const recovered = restarted.driver.status();
  assert.ok(
    recovered.commit >= 8 && recovered.lastIndex >= 8,
    JSON.stringify(recovered, (_, v) => String(v)),
  );
  await cluster.allApplied(texts(1, 9));
  await waitFor(() => restarted.driver.status().leader === secondId, { timeoutMs, what: 'the rejoin' });
  assert.equal(restarted.driver.status().role, 'follower');
});

test('an event-loop stall past the stop margin voids the lease until a later round is acknowledged', async (t) => {
  const cluster = await LocalCluster.create(t);
  const [, leader] = await cluster.leader();
  await waitFor(() => leader.driver.isLeaderWithLease(), { timeoutMs, what: 'the first lease' });
  const seen: Array<number | null> = [];
  leader.driver.onStall(() => seen.push(leader.driver.leaseValidUntil()));
  // The clock jumps as if the process had been frozen for a second.
  leader.clockOffsetMs.value += 1000;
  await waitFor(() => seen.length > 0, { timeoutMs, what: 'stall detection' });
  assert.equal(seen[0], null);
  assert.equal(leader.driver.status().driver.stalls >= 1, true);
  await waitFor(() => leader.driver.isLeaderWithLease(), { timeoutMs, what: 'the lease to come back' });
});
