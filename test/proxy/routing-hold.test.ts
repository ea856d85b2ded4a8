// Routing from the cluster view, and the hold gate's bounds.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ClusterView } from '../../src/cluster/view.ts';
import { HoldGate } from '../../src/proxy/hold.ts';
import type { HoldError } from '../../src/proxy/hooks.ts';
import { chooseRoute } from '../../src/proxy/routing.ts';

const view: ClusterView = {
  term: 3,
  primary: 'a',
  promotedAtLsn: null,
  members: [
    { name: 'a', role: 'primary', postgres: { host: 'h', port: 1 }, lsn: null, lagBytes: 0, healthy: true },
    { name: 'b', role: 'backup', postgres: { host: 'h', port: 2 }, lsn: null, lagBytes: 100, healthy: true },
    { name: 'c', role: 'backup', postgres: { host: 'h', port: 3 }, lsn: null, lagBytes: 10, healthy: true },
    {
      name: 'd',
      role: 'backup',
      postgres: { host: 'h', port: 4 },
      lsn: null,
      lagBytes: 1 << 30,
      healthy: true,
    },
    { name: 'e', role: 'backup', postgres: { host: 'h', port: 5 }, lsn: null, lagBytes: 0, healthy: false },
    { name: 'f', role: 'backup', postgres: { host: 'h', port: 6 }, lsn: null, lagBytes: null, healthy: true },
  ],
};

test('write port: the primary, or nowhere without one', () => {
  assert.equal(chooseRoute(view, 'write', 1000, 0)?.member, 'a');
  assert.equal(chooseRoute({ ...view, primary: null }, 'write', 1000, 0), null);
});

test('read-only port: healthy backups within the lag bound in turn, else the primary', () => {
  const members = [0, 1, 2, 3].map((turn) => chooseRoute(view, 'read', 1000, turn)?.member);
  assert.deepEqual(members, ['b', 'c', 'b', 'c']);
  assert.equal(chooseRoute(view, 'read', 50, 0)?.member, 'c');
  assert.equal(chooseRoute(view, 'read', 5, 0)?.member, 'a', 'no backup close enough: the primary');
  assert.equal(chooseRoute(view, 'read', 1000, 0)?.writable, false);
});

test('hold gate: released on notify, 57P03 past the deadline or the caps, 57014 on cancel', async () => {
  const gate = new HoldGate({ maxHeldRequests: 2, maxHeldBytes: 100 });
  let ready = false;
  const released = gate.hold(10, Date.now() + 60_000, new AbortController().signal, () => ready);
  assert.equal(gate.held, 1);
  await assert.rejects(
    gate.hold(200, Date.now() + 60_000, new AbortController().signal, () => false),
    (e: HoldError) => e.sqlstate === '57P03',
  );
  const cancel = new AbortController();
  const cancelled = gate.hold(10, Date.now() + 60_000, cancel.signal, () => false);
  await assert.rejects(
    gate.hold(1, Date.now() + 60_000, new AbortController().signal, () => false),
    /hold queue is full/,
  );
  cancel.abort();
  await assert.rejects(cancelled, (e: HoldError) => e.sqlstate === '57014');
  ready = true;
  gate.notify();
  await released;
  await assert.rejects(
    gate.hold(1, Date.now() + 20, new AbortController().signal, () => false),
    (e: HoldError) => e.sqlstate === '57P03',
  );
  assert.equal(gate.held, 0);
  assert.equal(gate.heldBytes, 0);
  assert.equal(gate.heldTotal, 3);
});
