// Unit tests of the pure Raft core's building blocks and of its API contract.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { applyConfChange, decodeConfChange, encodeConfChange } from '../../src/raft/core/confchange.ts';
import { LeaseTracker } from '../../src/raft/core/lease.ts';
import { quorumMatchIndex, tallyVotes } from '../../src/raft/core/quorum.ts';
import { RaftNode, validateConfig } from '../../src/raft/core/raft-node.ts';
import { SeededRng } from '../../src/raft/core/rng.ts';
import type { Config } from '../../src/raft/core/types.ts';

const base: Config = {
  id: '1',
  tickMs: 50,
  heartbeatTicks: 2,
  electionTicks: 10,
  maxClockDrift: 0.01,
  leaseMs: 400,
  leaseStopMarginMs: 100,
};

test('config: the lease must satisfy L <= E(1-rho)/(1+rho)', () => {
  validateConfig(base);
  validateConfig({ ...base, leaseMs: 490 });
  assert.throws(() => validateConfig({ ...base, leaseMs: 491 }), /lease bound/);
  assert.throws(() => validateConfig({ ...base, maxClockDrift: 0.2 }), /lease bound/);
  assert.throws(() => validateConfig({ ...base, leaseStopMarginMs: 400 }), /leaseStopMarginMs/);
});

test('quorum: the commit index is the highest index a majority matched', () => {
  fc.assert(
    fc.property(fc.array(fc.nat(100), { minLength: 1, maxLength: 7 }), (matches) => {
      const ids = matches.map((_, i) => String(i));
      const index = quorumMatchIndex(ids, (id) => matches[Number(id)]!);
      const atLeast = matches.filter((m) => m >= index).length;
      assert.ok(atLeast > matches.length / 2);
      assert.ok(matches.filter((m) => m >= index + 1).length <= matches.length / 2);
    }),
  );
  assert.equal(tallyVotes(['a', 'b', 'c'], new Map([['a', true]])), 'pending');
  assert.equal(
    tallyVotes(
      ['a', 'b', 'c'],
      new Map([
        ['a', true],
        ['b', true],
      ]),
    ),
    'won',
  );
  assert.equal(
    tallyVotes(
      ['a', 'b', 'c'],
      new Map([
        ['b', false],
        ['c', false],
      ]),
    ),
    'lost',
  );
});

test('lease: valid from the start of the latest round a quorum acked, minus the stop margin', () => {
  const lease = new LeaseTracker(400, 100);
  const quorum = ['a', 'b', 'c'];
  const r1 = lease.startRound(1000, 'a');
  const r2 = lease.startRound(1100, 'a');
  assert.equal(lease.validUntilMs(), null);
  lease.ack(r2, 'b', quorum);
  assert.equal(lease.validUntilMs(), 1400);
  assert.equal(lease.expiresAtMs(), 1500);
  lease.ack(r1, 'c', quorum);
  assert.equal(lease.validUntilMs(), 1400, 'an older round never shortens nor extends the lease');
  lease.reset();
  assert.equal(lease.validUntilMs(), null);
});

test('conf change: encoding round-trips and invalid changes are refused', () => {
  const cc = { type: 'addWitness' as const, node: 'w1' };
  assert.deepEqual(decodeConfChange(encodeConfChange(cc)), cc);
  assert.throws(() => decodeConfChange(new TextEncoder().encode('{"type":"nope","node":"x"}')), /malformed/);
  const cs = { voters: ['a'], witnesses: [], learners: ['b'] };
  assert.deepEqual(applyConfChange(cs, { type: 'addVoter', node: 'b' }), {
    voters: ['a', 'b'],
    witnesses: [],
    learners: [],
  });
  assert.throws(() => applyConfChange(cs, { type: 'remove', node: 'a' }), /at least one campaigning voter/);
});

test('driver contract: no input between ready() and advance()', () => {
  let now = 0;
  const node = new RaftNode(
    base,
    {
      hardState: { term: 0, vote: '', commit: 0 },
      entries: [],
      confState: { voters: ['1'], witnesses: [], learners: [] },
    },
    new SeededRng(1),
    () => now,
  );
  now = 600;
  assert.equal(node.campaign(), true);
  const rd = node.ready();
  assert.throws(() => node.tick(), /between ready\(\) and advance\(\)/);
  assert.throws(() => node.advance({ ...rd }), /not the outstanding one/);
  node.advance(rd);
  assert.equal(node.status().role, 'leader');
  assert.equal(node.leaseValidUntil(), 900, 'a single voter acks its own round at once');
});

test('rng: same seed, same stream; split streams differ', () => {
  const a = new SeededRng(42);
  const b = new SeededRng(42);
  const xs = Array.from({ length: 5 }, () => a.intBelow(1000));
  assert.deepEqual(
    xs,
    Array.from({ length: 5 }, () => b.intBelow(1000)),
  );
  assert.notDeepEqual(
    Array.from({ length: 5 }, () => a.split().intBelow(1_000_000)),
    Array.from({ length: 5 }, () => a.intBelow(1_000_000)),
  );
});
