// Lease gate (reference/raft-and-testing.md §6, F3): writes only while leader, own
// promotion applied for the current term, now + δ < leaseEnd, PostgreSQL writable.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type LeaseGateInput, leaseGate } from '../../src/cluster/lease-gate.ts';

const open: LeaseGateInput = {
  isLeader: true,
  currentTerm: 4,
  promotedTerm: 4,
  appliedPrimary: 'node1',
  self: 'node1',
  nowMs: 1000,
  leaseEndMs: 1400,
  stopMarginMs: 100,
  pgWritable: true,
};

test('all four conditions hold: open until leaseEnd − δ', () => {
  assert.deepEqual(leaseGate(open), { open: true, closesAtMs: 1300 });
});

test('a follower never routes writes to itself', () => {
  assert.deepEqual(leaseGate({ ...open, isLeader: false }), { open: false, reason: 'not-leader' });
});

test('a new leader waits for its own Promoted of this term', () => {
  assert.equal(leaseGate({ ...open, currentTerm: 5 }).open, false);
  assert.deepEqual(leaseGate({ ...open, appliedPrimary: 'node2' }), { open: false, reason: 'not-promoted' });
});

test('the gate shuts δ before the lease ends, and with no lease', () => {
  assert.equal(leaseGate({ ...open, nowMs: 1299 }).open, true);
  assert.deepEqual(leaseGate({ ...open, nowMs: 1300 }), { open: false, reason: 'lease-expired' });
  assert.deepEqual(leaseGate({ ...open, leaseEndMs: null }), { open: false, reason: 'lease-expired' });
});

test('a PostgreSQL in recovery or down keeps the gate shut', () => {
  assert.deepEqual(leaseGate({ ...open, pgWritable: false }), {
    open: false,
    reason: 'postgres-not-writable',
  });
});
