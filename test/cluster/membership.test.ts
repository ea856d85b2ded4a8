// The pure plans behind `pgward member add|remove` and the transport's peer updates.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MemberSpec } from '../../src/cluster/commands.ts';
import { isRefusal, peerUpdates, planMemberAdd, planMemberRemove } from '../../src/cluster/membership.ts';

const spec = (name: string, kind: 'member' | 'witness' = 'member', raftPort = 7400): MemberSpec => ({
  name,
  kind,
  host: '127.0.0.1',
  raftPort,
  apiPort: 8000 + raftPort - 7400,
  pgPort: kind === 'member' ? 5432 : null,
  proxyPort: null,
});
const members = [spec('a'), spec('b', 'member', 7401), spec('w', 'witness', 7402)];
const conf = { voters: ['a', 'b'], witnesses: ['w'], learners: [] };

test('add: announce the addresses, then one single-server conf change', () => {
  const plan = planMemberAdd({ members, conf, spec: spec('c', 'member', 7403) });
  assert.ok(!isRefusal(plan));
  assert.deepEqual(plan.command, { type: 'member-add', member: spec('c', 'member', 7403) });
  assert.deepEqual(plan.change, { type: 'addVoter', node: 'c' });
  const witness = planMemberAdd({ members, conf, spec: spec('x', 'witness', 7404) });
  assert.ok(!isRefusal(witness));
  assert.deepEqual(witness.change, { type: 'addWitness', node: 'x' });
});

test('add: a half-done add (announced, not in the Raft configuration) is finished, a full one refused', () => {
  const half = planMemberAdd({ members, conf: { ...conf, witnesses: [] }, spec: spec('w', 'witness', 7402) });
  assert.ok(!isRefusal(half));
  assert.equal(half.command, null);
  assert.deepEqual(half.change, { type: 'addWitness', node: 'w' });
  const again = planMemberAdd({ members, conf, spec: spec('w', 'witness', 7402) });
  assert.ok(isRefusal(again));
  assert.equal(again.status, 409);
});

test('add: refused without pgPort for a member, with one for a witness, or with other addresses', () => {
  const noPort = planMemberAdd({ members, conf, spec: { ...spec('c'), pgPort: null } });
  assert.ok(isRefusal(noPort) && noPort.status === 400);
  const pgWitness = planMemberAdd({ members, conf, spec: { ...spec('c', 'witness'), pgPort: 5432 } });
  assert.ok(isRefusal(pgWitness) && pgWitness.status === 400);
  const moved = planMemberAdd({ members, conf, spec: spec('b', 'member', 7499) });
  assert.ok(isRefusal(moved) && moved.status === 409);
});

test('remove: out of the Raft configuration first, then out of the cluster state', () => {
  const plan = planMemberRemove({ members, conf, primary: 'a', self: 'a', name: 'b' });
  assert.ok(!isRefusal(plan));
  assert.deepEqual(plan.change, { type: 'remove', node: 'b' });
  assert.deepEqual(plan.command, { type: 'member-remove', name: 'b' });
  const witness = planMemberRemove({ members, conf, primary: 'a', self: 'a', name: 'w' });
  assert.ok(!isRefusal(witness));
  assert.deepEqual(witness.change, { type: 'remove', node: 'w' });
});

test('remove: the primary is refused with the way out; unknown names are 404; the last database member stays', () => {
  const primary = planMemberRemove({ members, conf, primary: 'a', self: 'a', name: 'a' });
  assert.ok(isRefusal(primary));
  assert.equal(primary.status, 409);
  assert.match(primary.message, /is the primary: switch over first/);
  const unknown = planMemberRemove({ members, conf, primary: 'a', self: 'a', name: 'zz' });
  assert.ok(isRefusal(unknown) && unknown.status === 404);
  const last = planMemberRemove({
    members: [spec('a'), spec('w', 'witness')],
    conf: { voters: ['b'], witnesses: ['w'], learners: [] },
    primary: 'a',
    self: 'a',
    name: 'b',
  });
  assert.ok(isRefusal(last) && last.status === 409);
});

test('peers follow the applied membership; a removed one goes only once it left the Raft configuration', () => {
  const known = new Map([
    ['b', { host: '127.0.0.1', port: 7401 }],
    ['w', { host: '127.0.0.1', port: 7402 }],
  ]);
  const added = peerUpdates(known, [...members, spec('c', 'member', 7403)], conf, 'a');
  assert.deepEqual(added, { set: [['c', { host: '127.0.0.1', port: 7403 }]], remove: [] });
  const stillVoting = peerUpdates(known, [spec('a'), spec('b', 'member', 7401)], conf, 'a');
  assert.deepEqual(stillVoting, { set: [], remove: [] });
  const gone = peerUpdates(known, [spec('a'), spec('b', 'member', 7401)], { ...conf, witnesses: [] }, 'a');
  assert.deepEqual(gone, { set: [], remove: ['w'] });
});
