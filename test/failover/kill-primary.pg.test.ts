// Failover after kill -9 of the primary's postmaster (DESIGN.md "Failover, step by
// step"): the primary's sidecar steps down to the most advanced backup, which
// promotes in a new term; every acknowledged write survives; the old primary
// rejoins as a streaming backup (pg_rewind).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startLocalCluster } from '../support/cluster.ts';
import {
  keepLogsOnFailure,
  primariesByPostgres,
  waitForPrimary,
  waitForStreamingBackup,
} from '../support/failover.ts';

test('kill -9 of the primary postmaster: a backup takes over, nothing acknowledged is lost, the old primary rejoins', async (t) => {
  const cluster = await startLocalCluster({ nodes: 3 });
  t.after(() => cluster.stop());
  await keepLogsOnFailure(cluster, async () => {
    const first = await waitForPrimary(cluster);
    await cluster.sql(first.node, 'CREATE TABLE acked (id int PRIMARY KEY)');
    const acked: number[] = [];
    for (let id = 1; id <= 50; id++) {
      await cluster.sql(first.node, 'INSERT INTO acked VALUES ($1)', [id]);
      acked.push(id);
    }
    const pid = first.node.postmasterPid();
    assert.ok(pid !== null);
    process.kill(pid, 'SIGKILL');

    const next = await waitForPrimary(cluster, { aboveTerm: first.term, not: first.node.name });
    for (let id = 51; id <= 60; id++) {
      await cluster.sql(next.node, 'INSERT INTO acked VALUES ($1)', [id]);
      acked.push(id);
    }
    const rows = await cluster.sql<{ id: number }>(next.node, 'SELECT id FROM acked ORDER BY id');
    assert.deepEqual(
      rows.map((r) => r.id),
      acked,
    );
    await waitForStreamingBackup(cluster, first.node);
    assert.deepEqual(await primariesByPostgres(cluster), [next.node.name]);
    const onOld = await cluster.sql<{ n: string }>(first.node, 'SELECT count(*)::text AS n FROM acked');
    assert.ok(Number(onOld[0]?.n) >= 50);
  });
});
