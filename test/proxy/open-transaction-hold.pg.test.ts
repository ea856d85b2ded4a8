// Fencing of open transactions (issue 6 §4a/b, the zombie primary): a transaction
// open on a backend whose term this proxy can no longer vouch for (a primary's
// sidecar woken after a freeze longer than its lease) gets nothing more forwarded:
// its COMMIT is held until the lease comes back (then it goes on) or the term moves
// (then 40001, nothing committed), and past the hold bound it is given up (40001).
// Driven with StaticTopology plus a mayContinue switch, against the shared PostgreSQL.
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import type { Endpoint, TopologySource } from '../../src/cluster/view.ts';
import { direct, primaryView, startProxy, type TestProxy, tempDatabase } from '../support/proxy.ts';
import { waitFor } from '../support/wait.ts';

type PgError = Error & { code?: string };

/** Makes the proxy's topology vouch for open transactions only while `vouched.now` is true. */
function vouchSwitch(proxy: TestProxy): { now: boolean } {
  const vouched = { now: true };
  (proxy.topology as TopologySource).mayContinue = (term: number, _endpoint: Endpoint) =>
    vouched.now && term === proxy.topology.current().term;
  return vouched;
}

async function openTransaction(proxy: TestProxy, database: string) {
  const client = await proxy.connect(database);
  await client.query('CREATE TABLE t (x int)');
  await client.query('BEGIN');
  await client.query('INSERT INTO t VALUES (1)');
  return client;
}

function settled(promise: Promise<unknown>): { state: 'pending' | 'ok' | string } {
  const box: { state: string } = { state: 'pending' };
  promise.then(
    () => {
      box.state = 'ok';
    },
    (error: PgError) => {
      box.state = error.code ?? error.message;
    },
  );
  return box;
}

/** A transaction opened through a proxy (30 s hold bound) whose term it then stops vouching for, and its COMMIT, held. */
async function heldCommit(t: TestContext) {
  const proxy = await startProxy(t, { holdTimeoutMs: 30_000 });
  const vouched = vouchSwitch(proxy);
  const database = await tempDatabase(t);
  const client = await openTransaction(proxy, database);
  vouched.now = false;
  const commit = settled(client.query('COMMIT'));
  await waitFor(() => proxy.server.stats().heldRequests === 1, {
    timeoutMs: 10_000,
    what: 'the COMMIT held',
  });
  return { proxy, vouched, database, client, commit };
}

async function idleInTransaction(database: string): Promise<number> {
  const rows = await direct(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND state = 'idle in transaction'",
    [database],
  );
  return Number(rows.rows[0]?.n);
}

test('a COMMIT the proxy cannot vouch for is held, then gets 40001 when the term moves; nothing committed', async (t) => {
  const { proxy, database, client, commit } = await heldCommit(t);
  assert.equal(commit.state, 'pending');
  assert.equal(await idleInTransaction(database), 1, 'the COMMIT never reached PostgreSQL');
  proxy.topology.set(primaryView(2));
  await waitFor(() => commit.state !== 'pending', { timeoutMs: 10_000, what: 'the COMMIT answered' });
  assert.equal(commit.state, '40001');
  await client.query('ROLLBACK');
  const count = await client.query('SELECT count(*)::int AS n FROM t');
  assert.equal(count.rows[0].n, 0, 'nothing of the transaction was committed');
});

test('a held COMMIT goes on once the term is vouched for again (a lease back after a stall)', async (t) => {
  const { vouched, client, commit } = await heldCommit(t);
  vouched.now = true;
  await waitFor(() => commit.state !== 'pending', { timeoutMs: 10_000, what: 'the COMMIT answered' });
  assert.equal(commit.state, 'ok');
  const count = await client.query('SELECT count(*)::int AS n FROM t');
  assert.equal(count.rows[0].n, 1);
});

test('past the hold bound the open transaction is given up with 40001; nothing committed', async (t) => {
  const proxy = await startProxy(t, { holdTimeoutMs: 500 });
  const vouched = vouchSwitch(proxy);
  const database = await tempDatabase(t);
  const client = await openTransaction(proxy, database);
  vouched.now = false;
  await assert.rejects(client.query('COMMIT'), (e: PgError) => e.code === '40001');
  vouched.now = true;
  await client.query('ROLLBACK');
  const count = await client.query('SELECT count(*)::int AS n FROM t');
  assert.equal(count.rows[0].n, 0);
  await waitFor(async () => (await idleInTransaction(database)) === 0, {
    timeoutMs: 10_000,
    what: 'the given-up backend closed',
  });
});
