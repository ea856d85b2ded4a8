// Two databases + one witness (DESIGN.md "Deployment shapes"): when the primary's
// whole node dies (kill -9 of its sidecar and PostgreSQL), the backup and the
// witness are 2 of 3 votes, so the backup is elected and promoted. With a single
// backup the synchronous quorum is that backup, so what happens to writes after the
// failover depends on `durability`, and each test asserts its policy honestly:
//   block:   the new primary's commits wait (no acknowledgement) until the old node
//            returns as a streaming backup, then complete, flushed on it (RPO 0).
//   degrade: commits are acknowledged at once, asynchronously, and status says so
//            (durability 'async'); back to 'quorum' once the old node streams again.
// Both: every acknowledged write is on the new primary, exactly one PostgreSQL is
// writable, the old primary rejoins as a streaming backup, the witness never leads.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { startLocalCluster, type TestCluster, type TestNode } from '../support/cluster.ts';
import {
  keepLogsOnFailure,
  primariesByPostgres,
  reports,
  waitForPrimary,
  waitForStreamingBackup,
} from '../support/failover.ts';
import { killWholeNode } from '../support/processes.ts';
import { waitFor } from '../support/wait.ts';

const TIMEOUT_MS = 400_000;

async function durabilityOf(node: TestNode): Promise<string | null> {
  const response = await fetch(`${node.apiUrl}/cluster`, { signal: AbortSignal.timeout(2000) });
  const body = (await response.json()) as { durability: { mode: string } | null };
  return body.durability?.mode ?? null;
}

async function ids(cluster: TestCluster, node: TestNode): Promise<number[]> {
  const rows = await cluster.sql<{ id: number }>(node, 'SELECT id FROM acked ORDER BY id');
  return rows.map((r) => r.id);
}

/** Common start: a writable primary, 20 acknowledged rows, the backup streaming them. */
async function prepare(cluster: TestCluster) {
  const witness = cluster.node('witness');
  const first = await waitForPrimary(cluster);
  assert.notEqual(first.node.name, 'witness');
  const backup = cluster.nodes.find((n) => n !== first.node && n !== witness)!;
  await waitForStreamingBackup(cluster, backup);
  // PostgreSQL streams as soon as the backup's postmaster is up, which can be before its
  // sidecar joined Raft: a backup with an empty Raft log rightly never wins an election,
  // so the kill waits until every sidecar follows this leader in this term.
  await waitFor(
    async () => {
      const answers = await reports(cluster);
      return (
        answers.length === cluster.nodes.length &&
        answers.every((r) => r.term === first.term && r.leader === first.node.name)
      );
    },
    { timeoutMs: 60_000, what: `every sidecar to follow ${first.node.name} in term ${first.term}` },
  );
  await cluster.sql(first.node, 'CREATE TABLE acked (id int PRIMARY KEY)');
  const acked: number[] = [];
  for (let id = 1; id <= 20; id++) {
    await cluster.sql(first.node, 'INSERT INTO acked VALUES ($1)', [id]);
    acked.push(id);
  }
  const health = (await (await fetch(`${witness.apiUrl}/health`)).json()) as Record<string, unknown>;
  assert.equal(health.kind, 'witness');
  assert.equal(health.role, 'witness');
  assert.equal(health.campaignable, false);
  return { witness, old: first.node, backup, term: first.term, acked };
}

/** The end state both policies share. */
async function assertSettled(cluster: TestCluster, primary: TestNode, old: TestNode, acked: number[]) {
  await waitForStreamingBackup(cluster, old);
  assert.deepEqual(await primariesByPostgres(cluster), [primary.name]);
  assert.deepEqual(await ids(cluster, primary), acked);
  await waitFor(async () => (await ids(cluster, old)).length === acked.length, {
    timeoutMs: 60_000,
    what: `${old.name} to replay every acknowledged row`,
  });
  await waitFor(
    async () => {
      const answers = await reports(cluster);
      return (
        answers.length === cluster.nodes.length && answers.every((r) => r.writablePrimary === primary.name)
      );
    },
    { timeoutMs: 60_000, what: `every sidecar, the witness included, to name ${primary.name} the primary` },
  );
  const status = await cluster.status();
  assert.equal(status.nodes.find((n) => n.name === 'witness')?.role, 'witness');
  // The primary's view: the witness is a healthy voter (it answers Raft), with no PostgreSQL.
  await waitFor(
    async () => {
      const response = await fetch(`${primary.apiUrl}/cluster`, { signal: AbortSignal.timeout(2000) });
      const body = (await response.json()) as {
        members: Array<{ name: string; role: string; healthy: boolean; postgres: unknown }>;
      };
      const witness = body.members.find((m) => m.name === 'witness');
      return witness?.role === 'witness' && witness.healthy && witness.postgres === null;
    },
    { timeoutMs: 30_000, what: 'the primary to report the witness healthy, with no PostgreSQL' },
  );
  for (const report of await reports(cluster)) assert.notEqual(report.leader, 'witness');
}

test('2 members + witness, durability block: the backup is elected with the witness vote; commits wait for a backup and complete when the old primary rejoins', {
  timeout: TIMEOUT_MS,
}, async (t) => {
  const cluster = await startLocalCluster({ nodes: 2, witness: true });
  t.after(() => cluster.stop());
  await keepLogsOnFailure(cluster, async () => {
    const { old, backup, term, acked } = await prepare(cluster);
    killWholeNode(old);
    const next = await waitForPrimary(cluster, {
      aboveTerm: term,
      among: cluster.nodes.filter((n) => n !== old),
      timeoutMs: 90_000,
    });
    assert.equal(next.node.name, backup.name, 'the only database member left is promoted');
    assert.deepEqual(await ids(cluster, backup), acked, 'every acknowledged write survived');

    // No backup streams: the commit must wait (never acknowledged without a second copy).
    const writer = new pg.Client({ connectionString: backup.pgUrl });
    writer.on('error', () => {});
    await writer.connect();
    t.after(() => writer.end().catch(() => {}));
    let settled = false;
    const insert = writer
      .query('INSERT INTO acked VALUES (21) RETURNING pg_current_wal_lsn()::text AS lsn')
      .finally(() => {
        settled = true;
      });
    await waitFor(
      async () => {
        const rows = await cluster.sql<{ n: number }>(
          backup,
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event = 'SyncRep'`,
        );
        return (rows[0]?.n ?? 0) > 0;
      },
      { timeoutMs: 30_000, what: 'the commit to wait for a synchronous backup' },
    );
    assert.equal(settled, false, 'a commit was acknowledged with no backup under durability block');
    await waitFor(async () => (await durabilityOf(backup)) === 'blocked', {
      timeoutMs: 30_000,
      what: "status to report durability 'blocked'",
    });

    await cluster.up();
    const result = await insert;
    const commitLsn = result.rows[0]!.lsn as string;
    acked.push(21);
    // Acknowledged only once the rejoined node had flushed it.
    const flushed = await cluster.sql<{ ok: boolean }>(
      backup,
      `SELECT bool_or(flush_lsn >= $1::pg_lsn) AS ok FROM pg_stat_replication WHERE application_name = $2`,
      [commitLsn, old.name],
    );
    assert.equal(flushed[0]?.ok, true, `${old.name} flushed the commit before it was acknowledged`);
    await assertSettled(cluster, backup, old, acked);
    t.diagnostic(`term ${term} -> ${next.term}; the blocked commit completed after ${old.name} rejoined`);
  });
});

test('2 members + witness, durability degrade: the backup is elected with the witness vote; writes continue asynchronously, visibly, until the old primary rejoins', {
  timeout: TIMEOUT_MS,
}, async (t) => {
  const cluster = await startLocalCluster({ nodes: 2, witness: true, durability: 'degrade' });
  t.after(() => cluster.stop());
  await keepLogsOnFailure(cluster, async () => {
    const { old, backup, term, acked } = await prepare(cluster);
    killWholeNode(old);
    const next = await waitForPrimary(cluster, {
      aboveTerm: term,
      among: cluster.nodes.filter((n) => n !== old),
      timeoutMs: 90_000,
    });
    assert.equal(next.node.name, backup.name);
    assert.deepEqual(await ids(cluster, backup), acked);

    // Through the surviving proxy, with the old node still dead: acknowledged, asynchronously.
    for (let id = 21; id <= 30; id++) {
      await waitFor(
        async () => {
          const client = new pg.Client({
            connectionString: backup.proxyUrl,
            connectionTimeoutMillis: 10_000,
          });
          client.on('error', () => {});
          try {
            await client.connect();
            await client.query('INSERT INTO acked VALUES ($1) ON CONFLICT DO NOTHING', [id]);
            return true;
          } finally {
            await client.end().catch(() => {});
          }
        },
        { timeoutMs: 60_000, what: `write ${id} through ${backup.name}'s proxy` },
      );
      acked.push(id);
    }
    assert.equal(old.sidecarPid(), null, `${old.name} is still down while the writes were acknowledged`);
    await waitFor(async () => (await durabilityOf(backup)) === 'async', {
      timeoutMs: 30_000,
      what: "status to report durability 'async'",
    });

    await cluster.up();
    await waitFor(async () => (await durabilityOf(backup)) === 'quorum', {
      timeoutMs: 90_000,
      what: "durability back to 'quorum' once the old primary streams",
    });
    await assertSettled(cluster, backup, old, acked);
    t.diagnostic(
      `term ${term} -> ${next.term}; 10 writes acknowledged asynchronously while ${old.name} was down`,
    );
  });
});
