// Planned switchover (`pgward switchover --to NODE`) under a light write load
// through the proxies: new transactions are held while leadership moves, running
// ones finish, the target promotes in a new term; no client sees an error, every
// acknowledged write is on the new primary, the old primary streams as a backup.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { startLocalCluster, type TestNode } from '../support/cluster.ts';
import {
  keepLogsOnFailure,
  primariesByPostgres,
  waitForPrimary,
  waitForStreamingBackup,
} from '../support/failover.ts';
import { waitFor } from '../support/wait.ts';

/** One session through a node's proxy inserting consecutive ids until stopped. */
class ProxyWriter {
  readonly acked: number[] = [];
  readonly errors: string[] = [];
  private stopped = false;
  private readonly loop: Promise<void>;

  constructor(node: TestNode, firstId: number) {
    this.loop = this.run(node, firstId);
  }

  private async run(node: TestNode, firstId: number): Promise<void> {
    const client = new pg.Client({ connectionString: node.proxyUrl, connectionTimeoutMillis: 15_000 });
    client.on('error', (error) => this.errors.push(`session: ${error.message}`));
    try {
      await client.connect();
      for (let id = firstId; !this.stopped; id++) {
        try {
          await client.query('INSERT INTO acked VALUES ($1)', [id]);
          this.acked.push(id);
        } catch (error) {
          this.errors.push(`insert ${id}: ${(error as Error).message}`);
          return;
        }
      }
    } catch (error) {
      this.errors.push(`connect: ${(error as Error).message}`);
    } finally {
      await client.end().catch(() => {});
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}

test('switchover under write load: no client error, nothing acknowledged lost, the old primary streams as a backup', async (t) => {
  const cluster = await startLocalCluster({ nodes: 3 });
  t.after(() => cluster.stop());
  await keepLogsOnFailure(cluster, async () => {
    const first = await waitForPrimary(cluster);
    await cluster.sql(first.node, 'CREATE TABLE acked (id int PRIMARY KEY)');
    const backups = cluster.nodes.filter((n) => n.name !== first.node.name);
    const target = backups[0]!;
    const writers = [new ProxyWriter(first.node, 1), new ProxyWriter(backups[1]!, 1_000_000)];
    t.after(() => Promise.all(writers.map((w) => w.stop())));
    await waitFor(() => writers.every((w) => w.acked.length >= 10 || w.errors.length > 0), {
      timeoutMs: 30_000,
      what: 'writes through both proxies',
    });

    const result = await cluster.pgward('switchover', '--dir', cluster.dir, '--to', target.name);
    assert.equal(result.code, 0, `pgward switchover failed: ${result.stderr}`);
    const next = await waitForPrimary(cluster, { aboveTerm: first.term, not: first.node.name });
    assert.equal(next.node.name, target.name);
    const countsAfter = writers.map((w) => w.acked.length);
    await waitFor(
      () => writers.every((w, i) => w.acked.length >= countsAfter[i]! + 10 || w.errors.length > 0),
      {
        timeoutMs: 30_000,
        what: 'writes through both proxies after the switchover',
      },
    );
    await Promise.all(writers.map((w) => w.stop()));
    assert.deepEqual(
      writers.flatMap((w) => w.errors),
      [],
      'client errors during the switchover',
    );

    await waitForStreamingBackup(cluster, first.node);
    assert.deepEqual(await primariesByPostgres(cluster), [target.name]);
    const rows = await cluster.sql<{ id: number }>(target, 'SELECT id FROM acked');
    const present = new Set(rows.map((r) => r.id));
    const lost = writers.flatMap((w) => w.acked).filter((id) => !present.has(id));
    assert.deepEqual(lost, [], 'acknowledged writes missing on the new primary');
  });
});
