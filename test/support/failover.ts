// Helpers for failover tests on a real local cluster: what each sidecar says,
// waiting for a (new) writable primary, and checking that exactly one PostgreSQL
// takes writes.
import assert from 'node:assert/strict';
import pg from 'pg';
import type { TestCluster, TestNode } from './cluster.ts';
import { waitFor } from './wait.ts';

export interface SidecarReport {
  reportedBy: string;
  term: number;
  writablePrimary: string | null;
  leader: string | null;
}

/** What each sidecar (or those of `among`) answers on GET /cluster; one that does not answer is left out. */
export async function reports(cluster: TestCluster, among?: TestNode[]): Promise<SidecarReport[]> {
  const answers = await Promise.all(
    (among ?? cluster.nodes).map(async (node) => {
      try {
        const response = await fetch(`${node.apiUrl}/cluster`, { signal: AbortSignal.timeout(2000) });
        return (await response.json()) as SidecarReport;
      } catch {
        return null;
      }
    }),
  );
  return answers.filter((a): a is SidecarReport => a !== null);
}

/** Waits until the sidecar of the primary reports itself writable in a term above `aboveTerm`. */
export async function waitForPrimary(
  cluster: TestCluster,
  options: {
    aboveTerm?: number;
    not?: string;
    timeoutMs?: number;
    /** Ask only these sidecars (a frozen one would make every poll wait for its timeout). */
    among?: TestNode[];
  } = {},
): Promise<{ node: TestNode; term: number }> {
  return waitFor(
    async () => {
      for (const report of await reports(cluster, options.among)) {
        if (report.writablePrimary !== report.reportedBy) continue;
        if (report.term <= (options.aboveTerm ?? 0) || report.reportedBy === options.not) continue;
        return { node: cluster.node(report.reportedBy), term: report.term };
      }
      return undefined;
    },
    { timeoutMs: options.timeoutMs ?? 60_000, intervalMs: 50, what: 'a writable primary' },
  );
}

/** The names of the nodes whose PostgreSQL runs out of recovery (accepts writes). */
export async function primariesByPostgres(cluster: TestCluster): Promise<string[]> {
  const out: string[] = [];
  for (const node of cluster.nodes) {
    try {
      const rows = await cluster.sql<{ r: boolean }>(node, 'SELECT pg_is_in_recovery() AS r');
      if (rows[0]?.r === false) out.push(node.name);
    } catch {
      // down: not a primary
    }
  }
  return out;
}

/** The timeline the writable PostgreSQL writes on now, or null unless exactly one node is out of recovery. */
async function primaryTimeline(cluster: TestCluster): Promise<number | null> {
  const timelines: number[] = [];
  for (const node of cluster.nodes) {
    try {
      const rows = await cluster.sql<{ tli: number }>(
        node,
        `SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int AS tli
          WHERE NOT pg_is_in_recovery()`,
      );
      if (rows[0] !== undefined) timelines.push(rows[0].tli);
    } catch {
      // down: not a primary
    }
  }
  return timelines.length === 1 ? (timelines[0] ?? null) : null;
}

/**
 * Waits until `node` runs as a backup whose walreceiver streams the primary's
 * current timeline (a backup stuck on an older timeline reconnects in a loop and
 * shows 'streaming' for a moment each time, so the status alone proves nothing).
 */
export async function waitForStreamingBackup(
  cluster: TestCluster,
  node: TestNode,
  timeoutMs = 90_000,
): Promise<void> {
  await waitFor(
    async () => {
      const rows = await cluster.sql<{ r: boolean; s: string | null; tli: number | null }>(
        node,
        `SELECT pg_is_in_recovery() AS r, (SELECT status FROM pg_stat_wal_receiver) AS s,
                (SELECT received_tli FROM pg_stat_wal_receiver) AS tli`,
      );
      const row = rows[0];
      if (row?.r !== true || row.s !== 'streaming') return false;
      return row.tli !== null && row.tli === (await primaryTimeline(cluster));
    },
    { timeoutMs, intervalMs: 100, what: `${node.name} streaming the primary's timeline as a backup` },
  );
}

/**
 * After a failover away from `old`: asserts exactly one PostgreSQL takes writes and
 * it is not `old`'s, waits until every sidecar names it the writable primary and
 * `old` streams its timeline as a backup, and returns its node.
 */
export async function settledNewPrimary(cluster: TestCluster, old: TestNode): Promise<TestNode> {
  const primaries = await primariesByPostgres(cluster);
  assert.equal(primaries.length, 1, `exactly one writable PostgreSQL, found [${primaries.join(', ')}]`);
  const primary = cluster.node(primaries[0]!);
  assert.notEqual(primary.name, old.name, 'the old primary is not the primary again');
  await waitFor(
    async () => {
      const answers = await reports(cluster);
      return (
        answers.length === cluster.nodes.length && answers.every((r) => r.writablePrimary === primary.name)
      );
    },
    { timeoutMs: 30_000, what: `every sidecar to name ${primary.name} the writable primary` },
  );
  await waitForStreamingBackup(cluster, old);
  return primary;
}

/** Runs one statement on a connection of its own (through a proxy, by its URL), then closes it. */
export async function viaProxy(url: string, text: string, params: unknown[] = []): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 15_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query(text, params);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Runs `body`; on failure copies every node's sidecar and PostgreSQL log to `PGWARD_KEEP_LOGS` (a directory) when set. */
export async function keepLogsOnFailure(cluster: TestCluster, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    const dest = process.env.PGWARD_KEEP_LOGS;
    if (dest !== undefined) {
      const { cpSync, mkdirSync } = await import('node:fs');
      const path = await import('node:path');
      mkdirSync(dest, { recursive: true });
      for (const node of cluster.nodes) {
        for (const file of ['sidecar.log', 'postgres.log']) {
          try {
            cpSync(path.join(node.nodeDir, file), path.join(dest, `${node.name}.${file}`));
          } catch {
            // a node that never started has no log
          }
        }
      }
    }
    throw error;
  }
}
