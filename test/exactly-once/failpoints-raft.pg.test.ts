// Fault injection against a real 3-node cluster with Raft-led failover (the
// counterpart of failover.pg.test.ts, where the test plays the failover itself).
// The sidecars start with PGWARD_TEST_FAILPOINTS=1, which mounts the test-only
// failpoint routes of the admin API. For each point a keyed and an unkeyed insert
// pause there in one node's proxy, the test kills the primary's postmaster (kill -9),
// waits until every process of that PostgreSQL is gone and the cluster promoted a
// backup in a newer term, then releases them. Checked: what each client was told
// matches what the new primary holds, and nothing is applied twice.
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import pg from 'pg';
import type { FailpointName } from '../../src/exactly-once/failpoints.ts';
import { startLocalCluster, type TestCluster, type TestNode } from '../support/cluster.ts';
import { keepLogsOnFailure, waitForPrimary } from '../support/failover.ts';
import { postgresTree } from '../support/processes.ts';
import { waitFor } from '../support/wait.ts';
import { settled } from './settled.ts';
import { assertTruthful, outcome, retryKeyed } from './told.ts';

async function api(cluster: TestCluster, node: TestNode, method: string, path: string, body?: unknown) {
  const response = await fetch(`${node.apiUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${cluster.apiToken}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(10_000),
  });
  const json = (await response.json()) as Record<string, unknown>;
  assert.equal(response.status, 200, `${method} ${path} on ${node.name}: ${JSON.stringify(json)}`);
  return json;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function connect(t: TestContext, node: TestNode): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: node.proxyUrl, connectionTimeoutMillis: 30_000 });
  client.on('error', () => {});
  await client.connect();
  t.after(() => client.end().catch(() => {}));
  return client;
}

/** BEGIN; [set_config key;] INSERT; COMMIT. A keyed client retries the whole transaction after 40001 or PW004-as-success. */
async function transaction(client: pg.Client, name: string, key: string | null): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await client.query('BEGIN');
      if (key !== null) await client.query("SELECT set_config('pgward.idempotency_key', $1, true)", [key]);
      await client.query('INSERT INTO items VALUES ($1)', [name]);
      await client.query('COMMIT');
      return;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      const code = (error as { code?: string }).code;
      if (key !== null && code === 'PW004') return;
      if (key === null || code !== '40001' || attempt >= 3) throw error;
    }
  }
}

type Form = 'autocommit' | 'transaction';

async function scenario(
  t: TestContext,
  cluster: TestCluster,
  point: FailpointName,
  via: 'primary' | 'backup',
  form: Form = 'autocommit',
) {
  const primary = await settled(cluster, 1, 240_000);
  const proxyNode =
    via === 'primary' ? primary.node : cluster.nodes.find((n) => n.name !== primary.node.name)!;
  const keyedClient = await connect(t, proxyNode);
  const unkeyedClient = await connect(t, proxyNode);
  const tag = `${point}-${via}-${form}`;
  t.after(() => api(cluster, proxyNode, 'DELETE', '/test/failpoints').catch(() => {}));
  await api(cluster, proxyNode, 'PUT', `/test/failpoints/${point}`, { count: 2 });

  const keyedCall = outcome(
    form === 'autocommit'
      ? retryKeyed(
          keyedClient,
          () => connect(t, proxyNode),
          `INSERT INTO items VALUES ('keyed ${tag}') /*pgward_key='${tag}'*/`,
        )
      : transaction(keyedClient, `keyed ${tag}`, tag),
  );
  const unkeyedCall = outcome(
    form === 'autocommit'
      ? unkeyedClient.query('INSERT INTO items VALUES ($1)', [`unkeyed ${tag}`])
      : transaction(unkeyedClient, `unkeyed ${tag}`, null),
  );
  await waitFor(
    async () =>
      ((await api(cluster, proxyNode, 'GET', '/test/failpoints'))[point] as { reached?: boolean })?.reached,
    { timeoutMs: 60_000, intervalMs: 50, what: `both requests paused at ${point}` },
  );

  const postmaster = primary.node.postmasterPid();
  assert.ok(postmaster !== null, `${primary.node.name} has no postmaster`);
  const processes = postgresTree(postmaster);
  process.kill(postmaster, 'SIGKILL');
  // Released only once no process of the old primary can still commit and a backup took over.
  await waitFor(() => processes.every((pid) => !alive(pid)), {
    timeoutMs: 60_000,
    what: `every process of ${primary.node.name}'s PostgreSQL gone`,
  });
  const next = await waitForPrimary(cluster, { aboveTerm: primary.term, timeoutMs: 120_000 });
  await api(cluster, proxyNode, 'POST', `/test/failpoints/${point}/release`);

  const [keyed, unkeyed] = await Promise.all([keyedCall, unkeyedCall]);
  const count = async (name: string) =>
    (
      await cluster.sql<{ n: number }>(next.node, 'SELECT count(*)::int AS n FROM items WHERE name = $1', [
        name,
      ])
    )[0]?.n ?? 0;
  const keyedRows = await count(`keyed ${tag}`);
  const unkeyedRows = await count(`unkeyed ${tag}`);
  t.diagnostic(
    JSON.stringify({
      point,
      via,
      killed: primary.node.name,
      next: next.node.name,
      keyed,
      unkeyed,
      keyedRows,
      unkeyedRows,
    }),
  );
  assertTruthful(keyed, keyedRows, 'keyed');
  assertTruthful(unkeyed, unkeyedRows, 'unkeyed');
  // The COMMIT (or the wrapped statement's) never reached a live server: the keyed request
  // succeeds (re-run by the proxy, or by the client after 40001), the unkeyed one is told 40001.
  assert.deepEqual(keyed, { ok: true });
  assert.deepEqual(unkeyed, { ok: false, code: '40001' });
}

test('failpoints with Raft-led failover: kill -9 of the primary postmaster while commits are paused', {
  timeout: 600_000,
}, async (t) => {
  process.env.PGWARD_TEST_FAILPOINTS = '1';
  const cluster = await startLocalCluster({ nodes: 3 });
  t.after(() => cluster.stop());
  await keepLogsOnFailure(cluster, async () => {
    const primary = await waitForPrimary(cluster, { timeoutMs: 120_000 });
    await cluster.sql(primary.node, 'CREATE TABLE items (name text NOT NULL)');
    await t.test("before the fence, through the primary node's proxy", (tt) =>
      scenario(tt, cluster, 'before-fence', 'primary'),
    );
    await t.test("between fence and COMMIT, through a backup node's proxy", (tt) =>
      scenario(tt, cluster, 'between-fence-and-commit', 'backup'),
    );
    await t.test("explicit transactions, between fence and COMMIT, through the primary node's proxy", (tt) =>
      scenario(tt, cluster, 'between-fence-and-commit', 'primary', 'transaction'),
    );
  });
});
