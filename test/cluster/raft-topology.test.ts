// RaftTopology: what the proxy routes by. Fencing (b): a proxy that has not heard
// from a leader within the lease holds writes; the primary's own proxy routes to
// it only while its lease gate is open, re-checked when the lease runs out.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeCommand } from '../../src/cluster/commands.ts';
import { type LocalKnowledge, RaftTopology } from '../../src/cluster/raft-topology.ts';
import { applyEntry, initialClusterState } from '../../src/cluster/state-machine.ts';

const members = ['node1', 'node2', 'node3'].map((name, i) => ({
  name,
  kind: 'member' as const,
  host: '127.0.0.1',
  raftPort: 7401 + i,
  apiPort: 8001 + i,
  pgPort: 15431 + i,
  proxyPort: 6431 + i,
}));
const promoted = applyEntry(initialClusterState(members), {
  index: 1,
  term: 2,
  data: encodeCommand({ type: 'promoted', term: 2, node: 'node1', lsn: 10n }),
}).state;

function knowledge(over: Partial<LocalKnowledge>): LocalKnowledge {
  return {
    state: promoted,
    currentTerm: 2,
    self: 'node1',
    isLeader: true,
    leaseGateOpen: true,
    leaderHeardRecently: false,
    viewValidUntilMs: 1000,
    ...over,
  };
}

test('the leader routes to itself only while its lease gate is open', () => {
  assert.equal(RaftTopology.compute(knowledge({})).primary, 'node1');
  assert.equal(RaftTopology.compute(knowledge({ leaseGateOpen: false })).primary, null);
});

test('a follower routes to the primary only while it hears from the leader', () => {
  const follower = { self: 'node2', isLeader: false, leaseGateOpen: false };
  assert.equal(RaftTopology.compute(knowledge({ ...follower, leaderHeardRecently: true })).primary, 'node1');
  assert.equal(RaftTopology.compute(knowledge({ ...follower, leaderHeardRecently: false })).primary, null);
});

test('a newer term without its promotion: no primary, and the term is already the new one', () => {
  const view = RaftTopology.compute(
    knowledge({ currentTerm: 3, self: 'node2', isLeader: false, leaderHeardRecently: true }),
  );
  assert.equal(view.term, 3);
  assert.equal(view.primary, null);
});

test('the cached view is recomputed once the lease it relied on ran out; listeners hear changes only', () => {
  let now = 0;
  let k = knowledge({ viewValidUntilMs: 100 });
  const topology = new RaftTopology(
    () => k,
    () => now,
  );
  const seen: Array<string | null> = [];
  topology.subscribe((view) => seen.push(view.primary));
  topology.refresh();
  topology.refresh();
  assert.equal(topology.current().primary, 'node1');
  k = knowledge({ leaseGateOpen: false, viewValidUntilMs: 200 });
  now = 50;
  assert.equal(topology.current().primary, 'node1', 'cached until the lease end');
  now = 100;
  assert.equal(topology.current().primary, null, 'recomputed at the lease end');
  topology.refresh();
  assert.deepEqual(seen, ['node1', null]);
});

// Open transactions (the zombie primary): a proxy may go on sending a running
// transaction to its backend only while it can vouch for the backend's term.

const node1 = { host: '127.0.0.1', port: 15431 };
const node2 = { host: '127.0.0.1', port: 15432 };

test('open transactions go on at the primary of the term while the lease (or leader contact) holds', () => {
  assert.equal(RaftTopology.vouchedPrimary(knowledge({})), 'node1');
  assert.equal(
    RaftTopology.vouchedPrimary(
      knowledge({ self: 'node2', isLeader: false, leaseGateOpen: false, leaderHeardRecently: true }),
    ),
    'node1',
  );
});

test('a primary whose lease ran out (a sidecar woken from a freeze) vouches for no open transaction', () => {
  assert.equal(RaftTopology.vouchedPrimary(knowledge({ leaseGateOpen: false })), null);
  assert.equal(RaftTopology.vouchedPrimary(knowledge({ isLeader: false })), null);
  assert.equal(
    RaftTopology.vouchedPrimary(knowledge({ self: 'node2', isLeader: false, leaderHeardRecently: false })),
    null,
  );
  assert.equal(RaftTopology.vouchedPrimary(knowledge({ currentTerm: 3 })), null, 'a newer term');
});

test('a switchover holds new transactions but lets the open ones finish', () => {
  const switching = applyEntry(promoted, {
    index: 2,
    term: 2,
    data: encodeCommand({ type: 'switchover-intent', term: 2, from: 'node1', to: 'node2' }),
  }).state;
  const k = knowledge({ state: switching });
  assert.equal(RaftTopology.compute(k).primary, null);
  assert.equal(RaftTopology.vouchedPrimary(k), 'node1');
});

test('mayContinue: the term and the endpoint must match, re-checked once the lease ran out', () => {
  let now = 0;
  let k = knowledge({ viewValidUntilMs: 100 });
  const topology = new RaftTopology(
    () => k,
    () => now,
  );
  topology.refresh();
  assert.equal(topology.mayContinue(2, node1), true);
  assert.equal(topology.mayContinue(1, node1), false, 'a backend of an older term');
  assert.equal(topology.mayContinue(2, node2), false, 'a backend on another member');
  // Frozen past the lease: the first question after waking sees it ran out.
  k = knowledge({ leaseGateOpen: false, viewValidUntilMs: 5000 });
  now = 3000;
  assert.equal(topology.mayContinue(2, node1), false);
});
