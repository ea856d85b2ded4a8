// Failover after kill -9 of the primary's sidecar with its PostgreSQL left running
// (DESIGN.md "Failover, step by step", fencing): the backups elect a new leader by
// election timeout, which promotes in a new term and takes writes through its
// proxy; the orphaned PostgreSQL cannot acknowledge a commit once the backups
// follow the new term; every acknowledged write survives; restarted, the old
// sidecar demotes its PostgreSQL (rewind) and it rejoins as a streaming backup.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startLocalCluster } from '../support/cluster.ts';
import {
  keepLogsOnFailure,
  primariesByPostgres,
  viaProxy,
  waitForPrimary,
  waitForStreamingBackup,
} from '../support/failover.ts';

test('kill -9 of the primary sidecar: fenced old PostgreSQL, a new primary takes writes, nothing acknowledged lost, the old primary rejoins', async (t) => {
  const cluster = await startLocalCluster({ nodes: 3 });
  t.after(() => cluster.stop());
  await keepLogsOnFailure(cluster, async () => {
    const first = await waitForPrimary(cluster);
    await viaProxy(first.node.proxyUrl, 'CREATE TABLE acked (id int PRIMARY KEY)');
    const acked: number[] = [];
    for (let id = 1; id <= 30; id++) {
      await viaProxy(first.node.proxyUrl, 'INSERT INTO acked VALUES ($1)', [id]);
      acked.push(id);
    }
    const sidecarPid = first.node.sidecarPid();
    assert.ok(sidecarPid !== null);
    process.kill(sidecarPid, 'SIGKILL');

    const next = await waitForPrimary(cluster, { aboveTerm: first.term, not: first.node.name });
    for (let id = 31; id <= 40; id++) {
      await viaProxy(next.node.proxyUrl, 'INSERT INTO acked VALUES ($1)', [id]);
      acked.push(id);
    }

    // Fenced: a commit straight on the orphaned PostgreSQL is never acknowledged
    // (no backup confirms it for the synchronous quorum any more).
    const orphan = await cluster.client(first.node);
    const inRecovery = await orphan.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
    assert.equal(inRecovery.rows[0]?.r, false, 'the orphaned PostgreSQL still runs as a primary');
    let orphanCommit: 'acknowledged' | 'failed' | 'pending' = 'pending';
    orphan
      .query('INSERT INTO acked VALUES (-1)')
      .then(() => {
        orphanCommit = 'acknowledged';
      })
      .catch(() => {
        orphanCommit = 'failed';
      });
    for (let id = 41; id <= 45; id++) {
      await viaProxy(next.node.proxyUrl, 'INSERT INTO acked VALUES ($1)', [id]);
      acked.push(id);
    }
    assert.notEqual(orphanCommit, 'acknowledged', 'the old primary acknowledged a commit after the new term');

    await cluster.up();
    await waitForStreamingBackup(cluster, first.node);
    assert.notEqual(orphanCommit, 'acknowledged', 'the old primary acknowledged a commit after the new term');
    await orphan.end().catch(() => {});
    assert.deepEqual(await primariesByPostgres(cluster), [next.node.name]);
    const rows = await cluster.sql<{ id: number }>(next.node, 'SELECT id FROM acked ORDER BY id');
    assert.deepEqual(
      rows.map((r) => r.id),
      acked,
    );
  });
});
