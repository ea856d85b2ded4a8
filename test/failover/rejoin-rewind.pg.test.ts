// The old primary rejoins by pg_rewind after it really diverged (DESIGN.md "Failover,
// step by step", 5. Resume; fencing (e) of the failover issue). Its sidecar is killed
// with PostgreSQL left running; the backups elect a new primary; a client that
// bypasses the proxy then commits on the orphaned PostgreSQL with
// synchronous_commit=local, so it writes WAL the new primary never sees; the orphan is
// killed. Restarted, the node's sidecar must demote it by pg_rewind (not by a fresh
// base backup) onto the new timeline: the diverged rows are gone from it, every
// acknowledged row is on every node, and exactly one PostgreSQL takes writes.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { startLocalCluster, type TestCluster, type TestNode } from '../support/cluster.ts';
import {
  keepLogsOnFailure,
  primariesByPostgres,
  viaProxy,
  waitForPrimary,
  waitForStreamingBackup,
} from '../support/failover.ts';
import { waitFor } from '../support/wait.ts';

/**
 * Inserts `id` through a proxy until it is acknowledged. An attempt that failed with
 * an unknown outcome (a failover of its own under a loaded machine) is retried; a
 * duplicate key then proves the earlier attempt committed. Bounded.
 */
async function insertAcked(url: string, id: number): Promise<void> {
  await waitFor(
    async () => {
      try {
        await viaProxy(url, 'INSERT INTO acked VALUES ($1)', [id]);
        return true;
      } catch (error) {
        if ((error as { code?: string }).code === '23505') return true;
        throw error;
      }
    },
    { timeoutMs: 90_000, intervalMs: 200, what: `insert ${id} acknowledged` },
  );
}

async function idsOn(cluster: TestCluster, node: TestNode): Promise<number[]> {
  const rows = await cluster.sql<{ id: number }>(node, 'SELECT id FROM acked ORDER BY id');
  return rows.map((r) => r.id);
}

/** The structured lines of a sidecar log written since `fromByte`. */
function logLinesSince(node: TestNode, fromByte: number): Array<Record<string, unknown>> {
  const text = readFileSync(node.logFile).subarray(fromByte).toString('utf8');
  const out: Array<Record<string, unknown>> = [];
  for (const line of text.split('\n')) {
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // not a structured line (a crash trace)
    }
  }
  return out;
}

test('the diverged old primary rejoins by pg_rewind: its own commits are gone, every acknowledged one is there', {
  timeout: 400_000,
}, async (t) => {
  const cluster = await startLocalCluster({ nodes: 3 });
  t.after(() => cluster.stop());
  await keepLogsOnFailure(cluster, async () => {
    const first = await waitForPrimary(cluster);
    const old = first.node;
    await viaProxy(old.proxyUrl, 'CREATE TABLE acked (id int PRIMARY KEY)');
    const acked: number[] = [];
    for (let id = 1; id <= 30; id++) {
      await viaProxy(old.proxyUrl, 'INSERT INTO acked VALUES ($1)', [id]);
      acked.push(id);
    }
    // Connected before the kill: the orphan's own session, as a client that bypasses the proxy.
    const orphan = await cluster.client(old);
    t.after(() => orphan.end().catch(() => {}));

    const sidecarPid = old.sidecarPid();
    assert.ok(sidecarPid !== null);
    process.kill(sidecarPid, 'SIGKILL');
    const next = await waitForPrimary(cluster, { aboveTerm: first.term, not: old.name });
    for (let id = 31; id <= 40; id++) {
      await insertAcked(next.node.proxyUrl, id);
      acked.push(id);
    }

    // Diverge for real: commits that only the orphan's WAL holds (no backup follows it now,
    // so a synchronous commit would wait forever; `local` lets it return once flushed here).
    const inRecovery = await orphan.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
    assert.equal(inRecovery.rows[0]?.r, false, 'the orphaned PostgreSQL still runs as a primary');
    await orphan.query('SET synchronous_commit = local');
    await orphan.query('INSERT INTO acked SELECT -g FROM generate_series(1, 1000) AS g');
    await orphan.query('CREATE TABLE diverged (x int)');
    const onOrphan = await orphan.query<{ n: string }>('SELECT count(*)::text AS n FROM acked WHERE id < 0');
    assert.equal(onOrphan.rows[0]?.n, '1000', 'the orphan committed its own rows');
    await orphan.end().catch(() => {});

    // The orphan dies too (kill -9: pg_rewind must cope with a server that did not shut down cleanly).
    const postmaster = old.postmasterPid();
    assert.ok(postmaster !== null);
    process.kill(postmaster, 'SIGKILL');
    await waitFor(() => old.postmasterPid() === null, { timeoutMs: 30_000, what: 'the orphan to die' });
    for (let id = 41; id <= 50; id++) {
      await insertAcked(next.node.proxyUrl, id);
      acked.push(id);
    }

    const logFrom = readFileSync(old.logFile).length;
    await cluster.up();
    await waitForStreamingBackup(cluster, old);

    // Demoted by pg_rewind, not by a fresh base backup.
    // Up to its first rejoin: a later failover (see below) may move it again.
    // The sidecar logs the rejoin once its start-up check returns, which can be a moment
    // after the walreceiver already streams: wait for the line, do not read once.
    const all = await waitFor(
      () => {
        const since = logLinesSince(old, logFrom);
        return since.some((l) => l.event === 'rejoin') ? since : undefined;
      },
      { timeoutMs: 30_000, what: `${old.name}'s sidecar to log its rejoin` },
    );
    const firstRejoin = all.findIndex((l) => l.event === 'rejoin');
    const lines = firstRejoin < 0 ? all : all.slice(0, firstRejoin + 1);
    const rejoin = lines.find((l) => l.event === 'rejoin');
    assert.ok(
      lines.some((l) => l.event === 'fence' && l.reason === 'demote'),
      'the sidecar announced the demotion',
    );
    assert.equal(rejoin?.how, 'rewound', `rejoined by ${String(rejoin?.how)}`);
    assert.ok(
      !lines.some((l) => typeof l.message === 'string' && l.message.includes('base backup')),
      'no fallback to a base backup',
    );

    // Writes through the rejoined node's proxy reach the primary.
    for (let id = 51; id <= 55; id++) {
      await insertAcked(old.proxyUrl, id);
      acked.push(id);
    }
    // The end state. Normally `next` is still primary; on a heavily loaded machine a
    // stalled leader may lose its lease and hand over once more, which is legitimate:
    // wait for whoever leads to have every other node streaming, then check.
    const final = await waitForPrimary(cluster);
    for (const node of cluster.nodes) {
      if (node.name !== final.node.name) await waitForStreamingBackup(cluster, node);
    }
    assert.deepEqual(
      await primariesByPostgres(cluster),
      [final.node.name],
      'exactly one writable PostgreSQL',
    );
    for (const node of cluster.nodes) {
      await waitFor(async () => (await idsOn(cluster, node)).length >= acked.length, {
        timeoutMs: 60_000,
        what: `${node.name} to replay every acknowledged write`,
      });
      assert.deepEqual(await idsOn(cluster, node), acked, `exactly the acknowledged rows on ${node.name}`);
      const diverged = await cluster.sql<{ t: string | null }>(
        node,
        "SELECT to_regclass('diverged')::text AS t",
      );
      assert.equal(diverged[0]?.t, null, `the orphan's table is not on ${node.name}`);
    }
  });
});
