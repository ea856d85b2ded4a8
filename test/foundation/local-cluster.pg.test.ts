// Issue 3 acceptance on a real 3-node local cluster (`pgward up --detach`):
// replication to both backups, quorum sync state, commits that wait for a backup's
// flush, a killed backup PostgreSQL restarted by its sidecar, and down/up with the
// data intact and no process left behind.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { isAlive } from '../../src/postgres/instance.ts';
import { startLocalCluster, type TestCluster } from '../support/cluster.ts';
import { waitFor } from '../support/wait.ts';

// Upper bounds, not sleeps: the machine may be shared by many busy test processes.
const WAIT = { timeoutMs: 120_000, intervalMs: 100 };

describe('local cluster (pgward up --detach, 3 nodes)', () => {
  let cluster: TestCluster;
  // Found from status rather than assumed: with failover, leadership may move on restarts.
  let primary: string;
  let backups: string[];

  before(async () => {
    // This file checks replication, not failover timing: slower Raft timings (within the
    // lease bound) keep a loaded CI machine's event-loop stalls from moving leadership mid-test.
    cluster = await startLocalCluster({
      nodes: 3,
      config: {
        raft: { tickMs: 100, electionTicks: 30, leaseMs: 2000, leaseStopMarginMs: 300 },
        failover: { fenceGraceMs: 5000 },
      },
    });
  });
  after(async () => {
    await cluster?.stop();
  });

  const count = async (node: string) =>
    Number((await cluster.sql<{ n: string }>(node, 'SELECT count(*) AS n FROM items'))[0]!.n);

  test('status reports a primary and two backups with pids', async () => {
    const status = await waitFor(
      async () => {
        const s = await cluster.status();
        const roles = s.nodes.map((n) => n.role).sort();
        return s.primary !== null && roles.join() === 'backup,backup,primary' ? s : undefined;
      },
      { ...WAIT, what: 'a primary and two backups in status' },
    );
    assert.ok(status.primary !== null);
    assert.ok(status.term >= 1);
    primary = status.primary;
    backups = status.nodes.filter((n) => n.name !== primary).map((n) => n.name);
    assert.equal(backups.length, 2);
    const cli = await cluster.pgward('status', '--json', '--dir', cluster.dir);
    assert.equal(cli.code, 0, cli.stderr);
    const fromCli = JSON.parse(cli.stdout) as typeof status;
    assert.equal(fromCli.cluster, cluster.name);
    // Sidecars keep their pids; a postmaster may be restarted between two reads, so only its presence is compared.
    assert.deepEqual(
      fromCli.nodes.map((n) => [n.name, n.sidecar.pid, n.proxy.port, n.postgres.port]),
      status.nodes.map((n) => [n.name, n.sidecar.pid, n.proxy.port, n.postgres.port]),
    );
    for (const node of status.nodes) {
      assert.equal(node.sidecar.pid, cluster.node(node.name).sidecarPid());
      assert.equal(typeof node.postgres.pid, 'number');
      assert.equal(node.proxy.port, cluster.node(node.name).proxyPort);
    }
  });

  test('writes on the primary are visible on both backups', async () => {
    await cluster.sql(primary, 'CREATE TABLE items (id serial PRIMARY KEY, note text)');
    await cluster.sql(primary, "INSERT INTO items (note) SELECT 'row ' || g FROM generate_series(1, 100) g");
    for (const backup of backups) {
      await waitFor(async () => (await count(backup)) === 100, { ...WAIT, what: `100 rows on ${backup}` });
    }
  });

  test('pg_stat_replication shows both backups streaming with quorum sync state', async () => {
    const rows = await waitFor(
      async () => {
        const r = await cluster.sql<{ application_name: string; state: string; sync_state: string }>(
          primary,
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
      [...backups].sort(),
    );
    const [names] = await cluster.sql<{ s: string }>(
      primary,
      "SELECT current_setting('synchronous_standby_names') AS s",
    );
    assert.equal(
      names!.s,
      `ANY 1 (${[...backups]
        .sort()
        .map((b) => `"${b}"`)
        .join(', ')})`,
    );
  });

  test('a commit returns only after a backup flushed it', async () => {
    // Freeze both walreceivers (SIGSTOP): they stay connected, so no supervisor re-points
    // them, but nothing is flushed or acknowledged until SIGCONT.
    const walreceivers = await Promise.all(
      backups.map(async (backup) => {
        const rows = await waitFor(
          async () => {
            const r = await cluster.sql<{ pid: number }>(
              backup,
              "SELECT pid FROM pg_stat_wal_receiver WHERE status = 'streaming'",
            );
            return r.length === 1 ? r : undefined;
          },
          { ...WAIT, what: `${backup}'s walreceiver` },
        );
        return rows[0]!.pid;
      }),
    );
    const writer = await cluster.client(primary);
    try {
      for (const pid of walreceivers) process.kill(pid, 'SIGSTOP');
      let committed = false;
      const commit = writer.query("INSERT INTO items (note) VALUES ('waits for a backup')").then(() => {
        committed = true;
      });
      await waitFor(
        async () =>
          (
            await cluster.sql(
              primary,
              "SELECT 1 FROM pg_stat_activity WHERE wait_event = 'SyncRep' AND query LIKE 'INSERT INTO items%'",
            )
          ).length === 1,
        { ...WAIT, what: 'the commit waiting on SyncRep' },
      );
      assert.equal(committed, false, 'the commit must wait while no backup flushes');
      process.kill(walreceivers[0]!, 'SIGCONT');
      await commit;
      assert.equal(committed, true);
    } finally {
      for (const pid of walreceivers) if (isAlive(pid)) process.kill(pid, 'SIGCONT');
      await writer.end();
    }
    const expected = await count(primary);
    for (const backup of backups) {
      await waitFor(async () => (await count(backup)) === expected, { ...WAIT, what: `${backup} caught up` });
    }
  });

  test("killing a backup's PostgreSQL: commits go on, its sidecar restarts it, it catches up", async () => {
    const victim = cluster.node(backups[1]!);
    const oldPid = victim.postmasterPid();
    assert.ok(oldPid !== null);
    process.kill(oldPid, 'SIGKILL');
    for (let i = 0; i < 20; i++)
      await cluster.sql(primary, "INSERT INTO items (note) VALUES ('while a backup is down')");
    const newPid = await waitFor(
      () => {
        const pid = victim.postmasterPid();
        return pid !== null && pid !== oldPid ? pid : undefined;
      },
      { ...WAIT, what: `${victim.name} postmaster restarted` },
    );
    assert.notEqual(newPid, oldPid);
    const expected = await count(primary);
    await waitFor(async () => (await count(victim.name)) === expected, {
      ...WAIT,
      what: `${victim.name} caught up`,
    });
  });

  test('down leaves no process; up again restarts with the data intact', async () => {
    const status = await cluster.status();
    const pids = status.nodes
      .flatMap((n) => [n.sidecar.pid, n.postgres.pid])
      .filter((p): p is number => p !== null);
    assert.equal(pids.length, 6);
    const before = await count(primary);
    await cluster.down();
    assert.deepEqual(
      pids.filter((pid) => isAlive(pid)),
      [],
    );
    await cluster.up();
    const restarted = await waitFor(
      async () => {
        const s = await cluster.status();
        return s.primary !== null ? s : undefined;
      },
      { ...WAIT, what: 'a primary after the restart' },
    );
    primary = restarted.primary!;
    backups = restarted.nodes.filter((n) => n.name !== primary).map((n) => n.name);
    assert.equal(await count(primary), before);
    for (const backup of backups) {
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
