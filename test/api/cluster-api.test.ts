import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import express from 'express';
import { clusterApiRouter } from '../../src/api/routes/index.ts';
import type { AdminResult, ClusterAdmin, ClusterReader, LocalHealth } from '../../src/api/routes/types.ts';
import type { MemberSpec } from '../../src/cluster/commands.ts';
import { ClusterMetrics } from '../../src/cluster/metrics.ts';
import { type ClusterView, StaticTopology } from '../../src/cluster/view.ts';

const TOKEN = 'secret-token-for-tests';

function view(term: number, primary: string | null): ClusterView {
  return { term, primary, promotedAtLsn: 5n, members: [] };
}

async function serve(t: import('node:test').TestContext, health: LocalHealth) {
  const topology = new StaticTopology(view(3, 'node1'));
  const calls: string[] = [];
  const reader: ClusterReader = {
    health: () => health,
    status: () => ({ cluster: 'c', term: topology.current().term, primary: topology.current().primary }),
    topology,
  };
  const ok = async (what: string): Promise<AdminResult> => {
    calls.push(what);
    return { ok: true, message: what };
  };
  const admin: ClusterAdmin = {
    switchover: (r) => ok(`switchover ${r.to ?? '-'}`),
    failover: (r) => ok(`failover ${r.to ?? '-'}`),
    addMember: (m: MemberSpec) => ok(`add ${m.name}`),
    removeMember: (name) => ok(`remove ${name}`),
  };
  const metrics = new ClusterMetrics(
    {
      term: () => topology.current().term,
      role: () => health.role,
      lagBytes: () => health.lagBytes,
      leaseValid: () => health.writable,
      durability: () => 'quorum',
      proxy: () => ({ clients: 4, heldRequests: 2 }),
    },
    { cluster: 'c', node: health.node },
  );
  metrics.failovers.inc({ kind: 'failover' });
  metrics.failoverDuration.observe({ kind: 'failover' }, 0.8);
  const app = express();
  app.use(clusterApiRouter({ reader, admin, token: TOKEN, registry: metrics.registry }));
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { base, topology, calls, server };
}

const primaryHealth: LocalHealth = {
  node: 'node1',
  kind: 'member',
  role: 'primary',
  term: 3,
  writable: true,
  pgHealthy: true,
  streaming: false,
  lagBytes: null,
  lsn: '100',
  campaignable: true,
};
const backupHealth: LocalHealth = {
  ...primaryHealth,
  node: 'node2',
  role: 'backup',
  writable: false,
  streaming: true,
  lagBytes: 2048,
};

test('Patroni checks: /primary and /read-write are 200 only on the writable primary', async (t) => {
  const { base } = await serve(t, primaryHealth);
  for (const path of ['/primary', '/read-write', '/health'])
    assert.equal((await fetch(base + path)).status, 200);
  for (const path of ['/replica', '/read-only']) assert.equal((await fetch(base + path)).status, 503);
});

test('Patroni checks: a streaming backup answers /replica, with ?lag= as a bound', async (t) => {
  const { base } = await serve(t, backupHealth);
  assert.equal((await fetch(`${base}/primary`)).status, 503);
  assert.equal((await fetch(`${base}/replica`)).status, 200);
  assert.equal((await fetch(`${base}/read-only?lag=4096`)).status, 200);
  assert.equal((await fetch(`${base}/replica?lag=1024`)).status, 503);
  assert.equal((await fetch(`${base}/replica?lag=lots`)).status, 400);
  const body = (await (await fetch(`${base}/replica`)).json()) as LocalHealth;
  assert.equal(body.role, 'backup');
});

test('a primary that lost its lease is not /primary', async (t) => {
  const { base } = await serve(t, { ...primaryHealth, writable: false });
  assert.equal((await fetch(`${base}/primary`)).status, 503);
});

test('mutations without the bearer token are 401 and change nothing', async (t) => {
  const { base, calls } = await serve(t, primaryHealth);
  const post = (path: string, headers: Record<string, string>) =>
    fetch(base + path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: '{}',
    });
  assert.equal((await post('/switchover', {})).status, 401);
  assert.equal((await post('/failover', { authorization: 'Bearer wrong' })).status, 401);
  assert.equal((await fetch(`${base}/members/node3`, { method: 'DELETE' })).status, 401);
  assert.deepEqual(calls, []);
  const ok = await fetch(`${base}/switchover`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ to: 'node2' }),
  });
  assert.equal(ok.status, 200);
  assert.deepEqual(calls, ['switchover node2']);
});

test('bad admin bodies are 400 with a message saying what to send', async (t) => {
  const { base, calls } = await serve(t, primaryHealth);
  const res = await fetch(`${base}/members`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ name: 'Node 4' }),
  });
  assert.equal(res.status, 400);
  assert.match(((await res.json()) as { error: string }).error, /invalid member/);
  assert.deepEqual(calls, []);
});

test('GET /cluster long-polls until the term passes the one asked about', async (t) => {
  const { base, topology } = await serve(t, primaryHealth);
  assert.equal(((await (await fetch(`${base}/cluster`)).json()) as { term: number }).term, 3);
  const waiting = fetch(`${base}/cluster?waitForTermAbove=3&timeoutMs=20000`).then((r) => r.json());
  setImmediate(() => topology.set(view(4, 'node2')));
  assert.deepEqual(await waiting, { cluster: 'c', term: 4, primary: 'node2' });
  const timedOut = (await (await fetch(`${base}/cluster?waitForTermAbove=9&timeoutMs=50`)).json()) as {
    term: number;
  };
  assert.equal(timedOut.term, 4);
  assert.equal((await fetch(`${base}/cluster?waitForTermAbove=x`)).status, 400);
  assert.equal((await fetch(`${base}/cluster?waitForTermAbove=1&timeoutMs=999999`)).status, 400);
});

test('GET /metrics exposes term, role, lag, failovers, held requests, clients', async (t) => {
  const { base } = await serve(t, backupHealth);
  const text = await (await fetch(`${base}/metrics`)).text();
  assert.match(text, /pgward_term\{cluster="c",node="node2"\} 3/);
  assert.match(text, /pgward_role\{role="backup",cluster="c",node="node2"\} 1/);
  assert.match(text, /pgward_replication_lag_bytes\{cluster="c",node="node2"\} 2048/);
  assert.match(text, /pgward_failovers_total\{kind="failover",cluster="c",node="node2"\} 1/);
  assert.match(text, /pgward_held_requests\{cluster="c",node="node2"\} 2/);
  assert.match(text, /pgward_proxy_clients\{cluster="c",node="node2"\} 4/);
  assert.match(text, /pgward_failover_duration_seconds_bucket/);
});
