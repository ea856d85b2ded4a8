// Issue 3 acceptance on a real 3-node local cluster (`pgward up --detach`):
// replication to both backups, quorum sync state, commits that wait for a backup's
// flush, a killed backup PostgreSQL restarted by its sidecar, and down/up with the
// data intact and no process left behind.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { isAlive } from '../../src/postgres/instance.ts';
import { startLocalCluster, type TestCluster } from '../support/cluster.ts';
import { waitFor } from '../support/wait.ts';

const WAIT = { timeoutMs: 60_000, intervalMs: 100 };

describe('local cluster (pgward up --detach, 3 nodes)', () => {
  let cluster: TestCluster;

  before(async () => {
    cluster = await startLocalCluster({ nodes: 3 });
  });
  after(async () => {
    await cluster?.stop();
  });

  const count = async (node: string) =>
    Number((await cluster.sql<{ n: string }>(node, 'SELECT count(*) AS n FROM items'))[0]!.n);

  test('status reports node1 as primary and two backups with pids', async () => {
    const status = await waitFor(
      async () => {
        const s = await cluster.status();
        return s.nodes.filter((n) => n.role === 'backup').length === 2 ? s : undefined;
      },
      { ...WAIT, what: 'two backups in status' },
    );
    assert.equal(status.primary, 'node1');
    assert.equal(status.term, 1);
    for (const node of status.nodes) {
      assert.equal(node.sidecar.pid, cluster.node(node.name).sidecarPid());
      assert.equal(node.postgres.pid, cluster.node(node.name).postmasterPid());
      assert.equal(node.proxy.port, cluster.node(node.name).proxyPort);
    }
  });

  test('writes on the primary are visible on both backups', async () => {
    await cluster.sql('node1', 'CREATE TABLE items (id serial PRIMARY KEY, note text)');
    await cluster.sql('node1', "INSERT INTO items (note) SELECT 'row ' || g FROM generate_series(1, 100) g");
    for (const backup of ['node2', 'node3']) {
      await waitFor(async () => (await count(backup)) === 100, { ...WAIT, what: `100 rows on ${backup}` });
    }
  });

  test('pg_stat_replication shows both backups streaming with quorum sync state', async () => {
    const rows = await waitFor(
      async () => {
        const r = await cluster.sql<{ application_name: string; state: string; sync_state: string }>(
          'node1',
          'SELECT application_name, state, sync_state FROM pg_stat_replication ORDER BY application_name',
        );
        return r.length === 2 && r.every((x) => x.state === 'streaming' && x.sync_state === 'quorum')
          ? r
          : undefined;
      },
      { ...WAIT, what: 'two quorum streams' },
    );
    assert.deepEqual(
      rows.map((r) => r.application_name),
      ['node2', 'node3'],
    );
    const [names] = await cluster.sql<{ s: string }>(
      'node1',
      "SELECT current_setting('synchronous_standby_names') AS s",
    );
    assert.equal(names!.s, 'ANY 1 ("node2", "node3")');
  });

  test('a commit returns only after a backup flushed it', async () => {
    for (const backup of ['node2', 'node3']) {
      await cluster.sql(backup, "ALTER SYSTEM SET primary_conninfo = ''");
      await cluster.sql(backup, 'SELECT pg_reload_conf()');
    }
    await waitFor(
      async () => (await cluster.sql('node1', 'SELECT 1 FROM pg_stat_replication')).length === 0,
      { ...WAIT, what: 'both walreceivers gone' },
    );
    const writer = await cluster.client('node1');
    try {
      let committed = false;
      const commit = writer.query("INSERT INTO items (note) VALUES ('waits for a backup')").then(() => {
        committed = true;
      });
      await waitFor(
        async () =>
          (
            await cluster.sql(
              'node1',
              "SELECT 1 FROM pg_stat_activity WHERE wait_event = 'SyncRep' AND query LIKE 'INSERT INTO items%'",
            )
          ).length === 1,
        { ...WAIT, what: 'the commit waiting on SyncRep' },
      );
      assert.equal(committed, false, 'the commit must wait while no backup streams');
      await cluster.sql('node2', 'ALTER SYSTEM RESET primary_conninfo');
      await cluster.sql('node2', 'SELECT pg_reload_conf()');
      await commit;
      assert.equal(committed, true);
    } finally {
      await writer.end();
      await cluster.sql('node3', 'ALTER SYSTEM RESET primary_conninfo');
      await cluster.sql('node3', 'SELECT pg_reload_conf()');
    }
    await waitFor(
      async () =>
        (await cluster.sql('node1', "SELECT 1 FROM pg_stat_replication WHERE state = 'streaming'")).length ===
        2,
      { ...WAIT, what: 'both backups streaming again' },
    );
  });

  test("killing a backup's PostgreSQL: commits go on, its sidecar restarts it, it catches up", async () => {
    const victim = cluster.node('node3');
    const oldPid = victim.postmasterPid();
    assert.ok(oldPid !== null);
    process.kill(oldPid, 'SIGKILL');
    for (let i = 0; i < 20; i++)
      await cluster.sql('node1', "INSERT INTO items (note) VALUES ('while node3 is down')");
    const newPid = await waitFor(
      () => {
        const pid = victim.postmasterPid();
        return pid !== null && pid !== oldPid ? pid : undefined;
      },
      { ...WAIT, what: 'node3 postmaster restarted' },
    );
    assert.notEqual(newPid, oldPid);
    const expected = await count('node1');
    await waitFor(async () => (await count('node3')) === expected, { ...WAIT, what: 'node3 caught up' });
  });

  test('down leaves no process; up again restarts with the data intact', async () => {
    const status = await cluster.status();
    const pids = status.nodes
      .flatMap((n) => [n.sidecar.pid, n.postgres.pid])
      .filter((p): p is number => p !== null);
    assert.equal(pids.length, 6);
    const before = await count('node1');
    await cluster.down();
    assert.deepEqual(
      pids.filter((pid) => isAlive(pid)),
      [],
    );
    await cluster.up();
    assert.equal(await count('node1'), before);
    for (const backup of ['node2', 'node3']) {
      await waitFor(async () => (await count(backup)) === before, {
        ...WAIT,
        what: `${backup} has the data`,
      });
    }
    const again = await cluster.pgward('up', '--detach', '--dir', cluster.dir);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /already running/);
  });
});
