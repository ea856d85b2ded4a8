// The network plan of `pgward up --netns`: names within Linux limits and unique per
// cluster, a /24 that avoids the prefixes in use, isolation rules that cut a node
// off from its peers but never from the bridge (the root namespace's clients).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  candidateCidr,
  chooseCidr,
  cidrsOverlap,
  isolationRules,
  networkId,
  planNetwork,
} from '../../src/local/netns-plan.ts';

test('plan: names carry the cluster id and fit IFNAMSIZ; node i gets .10+i, the bridge .1', () => {
  const plan = planNetwork('local-1a2b3c', ['node1', 'node2', 'node3'], '10.99.7.0/24');
  assert.equal(plan.bridge, 'pgw-1a2b3c-br');
  assert.equal(plan.gateway, '10.99.7.1');
  assert.deepEqual(plan.nodes.node2, {
    namespace: 'pgw-1a2b3c-n2',
    veth: 'pgw-1a2b3c-2',
    address: '10.99.7.12',
  });
  for (const name of [plan.bridge, ...Object.values(plan.nodes).map((n) => n.veth)]) {
    assert.ok(name.length <= 15, name);
  }
  const other = planNetwork('local-ffffff', ['node1'], '10.99.8.0/24');
  assert.notEqual(other.nodes.node1!.namespace, plan.nodes.node1!.namespace);
  assert.throws(() => planNetwork('local-1a2b3c', ['node1'], '10.99.7.0/16'), /\/24/);
});

test('plan: a cluster name of another shape still yields a short stable id', () => {
  assert.equal(networkId('local-abcdef'), 'abcdef');
  assert.equal(networkId('my cluster'), networkId('my cluster'));
  assert.match(networkId('my cluster'), /^[0-9a-f]{6}$/);
});

test('cidr: overlap arithmetic', () => {
  assert.ok(cidrsOverlap('10.1.2.0/24', '10.0.0.0/8'));
  assert.ok(cidrsOverlap('10.1.2.0/24', '10.1.2.77'));
  assert.ok(!cidrsOverlap('10.1.2.0/24', '10.1.3.0/24'));
  assert.ok(!cidrsOverlap('10.1.2.0/24', '192.168.0.0/16'));
});

test('cidr: the choice is derived from the cluster name and skips prefixes in use', () => {
  const first = candidateCidr('local-1a2b3c', 0);
  assert.match(first, /^10\.\d+\.\d+\.0\/24$/);
  assert.equal(chooseCidr('local-1a2b3c', []), first);
  assert.equal(chooseCidr('local-1a2b3c', ['default', '0.0.0.0/0', '172.17.0.0/16']), first);
  const busy = chooseCidr('local-1a2b3c', [first]);
  assert.notEqual(busy, first);
  assert.ok(!cidrsOverlap(busy, first));
  assert.throws(() => chooseCidr('local-1a2b3c', ['10.0.0.0/8']), /no free/);
});

test('isolation: drops the peers both ways and leaves the bridge address alone', () => {
  const plan = planNetwork('local-1a2b3c', ['node1', 'node2', 'node3'], '10.99.7.0/24');
  const rules = isolationRules(plan, 'node1');
  assert.deepEqual(rules, [
    ['-A', 'INPUT', '-s', '10.99.7.12', '-j', 'DROP'],
    ['-A', 'OUTPUT', '-d', '10.99.7.12', '-j', 'DROP'],
    ['-A', 'INPUT', '-s', '10.99.7.13', '-j', 'DROP'],
    ['-A', 'OUTPUT', '-d', '10.99.7.13', '-j', 'DROP'],
  ]);
  assert.ok(!rules.flat().includes(plan.gateway));
  assert.throws(() => isolationRules(plan, 'node9'), /no node node9/);
});
