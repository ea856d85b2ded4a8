// kill -9 of a backup node (its sidecar and every PostgreSQL process) while writes go
// through the primary's proxy (DESIGN.md "Exactly-once across failover": the
// synchronous quorum is ANY 1 of the backups, so the other backup confirms every
// commit and no write waits or fails). The node then returns (`pgward up`), catches
// up and streams again; every acknowledged write is on every node; one primary.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import pg from 'pg';
import { startLocalCluster, type TestCluster, type TestNode } from '../support/cluster.ts';
import {
  keepLogsOnFailure,
  primariesByPostgres,
  waitForPrimary,
  waitForStreamingBackup,
} from '../support/failover.ts';
import { waitFor } from '../support/wait.ts';

/** A writer on one proxy connection: sequential inserts, each acknowledged id kept; any error is kept too. */
function startWriter(url: string) {
  const acked: number[] = [];
  const errors: string[] = [];
  let stopping = false;
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 15_000 });
  client.on('error', (error) => errors.push(`connection: ${error.message}`));
  const done = (async () => {
    await client.connect();
    for (let id = 1; !stopping && id <= 100_000; id++) {
      try {
        await client.query('INSERT INTO acked VALUES ($1)', [id]);
        acked.push(id);
      } catch (error) {
        errors.push(`insert ${id}: ${(error as Error).message}`);
        return;
      }
    }
  })().finally(() => client.end().catch(() => {}));
  return {
    acked,
    errors,
    async stop() {
      stopping = true;
      await done.catch((error: Error) => errors.push(`writer: ${error.message}`));
    },
  };
}

/** The postmaster and its direct children (backends, walreceiver, ...), as a dying machine loses them. */
function postgresPids(node: TestNode): number[] {
  const postmaster = node.postmasterPid();
  if (postmaster === null) return [];
  let children: number[] = [];
  try {
    const text = readFileSync(`/proc/${postmaster}/task/${postmaster}/children`, 'utf8').trim();
    children = text === '' ? [] : text.split(/\s+/).map(Number);
  } catch {
    // gone already
  }
  return [postmaster, ...children];
}

function killNode(node: TestNode): void {
  const sidecar = node.sidecarPid();
  const postgres = postgresPids(node);
  assert.ok(sidecar !== null, `${node.name} has a sidecar`);
  assert.ok(postgres.length > 0, `${node.name} has a PostgreSQL`);
  for (const pid of [sidecar, ...postgres]) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

async function idsOn(cluster: TestCluster, node: TestNode): Promise<number[]> {
  const rows = await cluster.sql<{ id: number }>(node, 'SELECT id FROM acked ORDER BY id');
  return rows.map((r) => r.id);
}

test('kill -9 of a backup node: writes go on without error, the backup returns and catches up', {
  timeout: 400_000,
}, async (t) => {
  const cluster = await startLocalCluster({ nodes: 3 });
  t.after(() => cluster.stop());
  await keepLogsOnFailure(cluster, async () => {
    const primary = await waitForPrimary(cluster);
    const [victim, survivor] = cluster.nodes.filter((n) => n.name !== primary.node.name);
    assert.ok(victim && survivor);
    await cluster.sql(primary.node, 'CREATE TABLE acked (id int PRIMARY KEY)');
    await waitForStreamingBackup(cluster, victim);
    await waitForStreamingBackup(cluster, survivor);

    const writer = startWriter(primary.node.proxyUrl);
    t.after(() => writer.stop());
    await waitFor(() => writer.acked.length >= 50 || writer.errors.length > 0, {
      timeoutMs: 60_000,
      what: 'writes before the kill',
    });
    killNode(victim);
    const atKill = writer.acked.length;
    // Writes keep being acknowledged: the surviving backup alone satisfies ANY 1.
    await waitFor(() => writer.acked.length >= atKill + 200 || writer.errors.length > 0, {
      timeoutMs: 60_000,
      what: 'writes acknowledged after the backup died',
    });
    assert.deepEqual(writer.errors, [], 'no write failed while the backup was down');
    assert.equal(victim.sidecarPid(), null, 'the victim stays down');

    await cluster.up();
    await waitForStreamingBackup(cluster, victim);
    const atReturn = writer.acked.length;
    await waitFor(() => writer.acked.length >= atReturn + 50 || writer.errors.length > 0, {
      timeoutMs: 60_000,
      what: 'writes after the backup returned',
    });
    await writer.stop();
    assert.deepEqual(writer.errors, [], 'no write failed at any point');

    const acked = writer.acked;
    assert.ok(acked.length >= 300, `acknowledged ${acked.length} writes`);
    // Same primary throughout (a backup's death is no reason to fail over), and only it writes.
    const after = await waitForPrimary(cluster);
    assert.equal(after.node.name, primary.node.name);
    assert.equal(after.term, primary.term);
    assert.deepEqual(await primariesByPostgres(cluster), [primary.node.name]);
    // Every acknowledged write on every node (the backups once they replayed up to it).
    for (const node of cluster.nodes) {
      await waitFor(async () => (await idsOn(cluster, node)).length >= acked.length, {
        timeoutMs: 60_000,
        what: `${node.name} to replay every acknowledged write`,
      });
      const ids = new Set(await idsOn(cluster, node));
      const missing = acked.filter((id) => !ids.has(id));
      assert.deepEqual(missing, [], `acknowledged writes missing on ${node.name}`);
    }
  });
});
