// Planned switchover (issue 6 §6, DESIGN.md "Failover, step by step") on a real
// 3-node cluster under load: pgbench through the primary's proxy plus
// node-postgres writers through every proxy (autocommit inserts and explicit
// two-statement transactions, session pooling). Writes are held and drained, the
// old primary stops cleanly, the target promotes, the old primary restarts as a
// streaming backup of the new timeline without pg_rewind. No client sees an
// error, every acknowledged write is on the new primary, and a second switchover
// moves the primary back.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
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

/** One session through a node's proxy writing consecutive ids until stopped. */
class ProxyWriter {
  readonly acked: number[] = [];
  readonly errors: string[] = [];
  /** Local ms of each acknowledgement: the longest gap around a switchover is the pause it saw. */
  readonly ackedAtMs: number[] = [];
  private stopped = false;
  private readonly loop: Promise<void>;

  constructor(
    node: TestNode,
    firstId: number,
    private readonly mode: 'autocommit' | 'transaction',
  ) {
    this.loop = this.run(node, firstId);
  }

  private async run(node: TestNode, firstId: number): Promise<void> {
    const client = new pg.Client({ connectionString: node.proxyUrl, connectionTimeoutMillis: 30_000 });
    client.on('error', (error) => this.errors.push(`session: ${error.message}`));
    try {
      await client.connect();
      for (let id = firstId; !this.stopped; id += 2) {
        try {
          if (this.mode === 'autocommit') {
            await client.query('INSERT INTO acked VALUES ($1)', [id]);
          } else {
            // A transaction open across the hold: the drain must let it finish.
            await client.query('BEGIN');
            await client.query('INSERT INTO acked VALUES ($1)', [id]);
            await client.query('SELECT pg_sleep(0.02)');
            await client.query('INSERT INTO acked VALUES ($1)', [id + 1]);
            await client.query('COMMIT');
          }
          this.acked.push(id);
          if (this.mode === 'transaction') this.acked.push(id + 1);
          this.ackedAtMs.push(performance.now());
        } catch (error) {
          this.errors.push(`write ${id}: ${(error as Error).message}`);
          return;
        }
      }
    } catch (error) {
      this.errors.push(`connect: ${(error as Error).message}`);
    } finally {
      await client.end().catch(() => {});
    }
  }

  longestGapMs(fromMs: number, toMs: number): number {
    const times = this.ackedAtMs.filter((t) => t >= fromMs && t <= toMs);
    let longest = 0;
    for (let i = 1; i < times.length; i++) longest = Math.max(longest, times[i]! - times[i - 1]!);
    return Math.round(longest);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}

interface PgbenchRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** pgbench -c 4 through `node`'s proxy (one session per client, kept for the run). */
function pgbench(node: TestNode, script: string, seconds: number): Promise<PgbenchRun> {
  const args = ['-n', '-h', '127.0.0.1', '-p', String(node.proxyPort), '-U', 'postgres'];
  args.push('-c', '4', '-j', '2', '-T', String(seconds), '-f', script, 'postgres');
  return new Promise((resolve) => {
    execFile('pgbench', args, { timeout: (seconds + 120) * 1000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

async function switchover(
  cluster: TestCluster,
  via: TestNode,
  to: TestNode,
): Promise<{ ms: number; pauseMs: number }> {
  const response = await fetch(`${via.apiUrl}/switchover`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${cluster.apiToken}` },
    body: JSON.stringify({ to: to.name }),
    signal: AbortSignal.timeout(120_000),
  });
  const body = (await response.json()) as { ms?: number; pauseMs?: number; error?: string };
  assert.equal(response.status, 200, `POST /switchover answered ${response.status}: ${JSON.stringify(body)}`);
  return { ms: Number(body.ms), pauseMs: Number(body.pauseMs) };
}

/** Sidecar log lines (JSON) of `node`. */
function events(node: TestNode): Array<Record<string, unknown>> {
  return readFileSync(node.logFile, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

test('switchover under pgbench and writer load: no client error, nothing lost, the old primary restarts as a backup without rewind; and back', {
  timeout: 900_000,
}, async (t) => {
  // The machine running the suite is shared and often overloaded (load 20-50 on 2
  // cores): an event loop stalled past the default 400 ms lease self-fences the
  // primary and turns the planned switchover into an unplanned failover before it
  // starts (seen once in six runs). Longer timings keep this test about the switchover;
  // the kill tests cover failover.
  const cluster = await startLocalCluster({
    nodes: 3,
    config: {
      raft: { electionTicks: 40, leaseMs: 1500, leaseStopMarginMs: 200 },
      failover: { fenceGraceMs: 3000 },
    },
  });
  t.after(() => cluster.stop());
  await keepLogsOnFailure(cluster, async () => {
    const first = await waitForPrimary(cluster);
    await cluster.sql(first.node, 'CREATE TABLE acked (id bigint PRIMARY KEY)');
    await cluster.sql(
      first.node,
      'CREATE TABLE bench_log (client int, v bigint, at timestamptz DEFAULT now())',
    );
    const script = path.join(cluster.dir, 'switchover.pgbench');
    writeFileSync(
      script,
      [
        '\\set v random(1, 1000000000)',
        'BEGIN;',
        'INSERT INTO bench_log (client, v) VALUES (:client_id, :v);',
        'SELECT count(*) FROM bench_log WHERE client = :client_id AND v = :v;',
        'END;',
        '',
      ].join('\n'),
    );
    const [a, b, c] = cluster.nodes as [TestNode, TestNode, TestNode];
    const writers = [
      new ProxyWriter(a, 1, 'autocommit'),
      new ProxyWriter(b, 1_000_001, 'transaction'),
      new ProxyWriter(c, 2_000_001, 'autocommit'),
    ];
    t.after(() => Promise.all(writers.map((w) => w.stop())));

    const order = [first.node, cluster.nodes.find((n) => n.name !== first.node.name)!, first.node];
    let term = first.term;
    for (let round = 1; round < order.length; round++) {
      const from = order[round - 1]!;
      const to = order[round]!;
      const counts = writers.map((w) => w.acked.length);
      await waitFor(() => writers.every((w, i) => w.acked.length >= counts[i]! + 10 || w.errors.length > 0), {
        timeoutMs: 60_000,
        what: `writes through every proxy before switchover ${round}`,
      });
      const bench = pgbench(from, script, 12);
      const benchRowsBefore = Number(
        (await cluster.sql<{ n: string }>(from, 'SELECT count(*)::text AS n FROM bench_log'))[0]?.n,
      );
      await waitFor(
        async () =>
          Number(
            (await cluster.sql<{ n: string }>(from, 'SELECT count(*)::text AS n FROM bench_log'))[0]?.n,
          ) >
          benchRowsBefore + 20,
        { timeoutMs: 60_000, what: 'pgbench writing through the proxy' },
      );

      const startedMs = performance.now();
      const measured = await switchover(cluster, from, to);
      const next = await waitForPrimary(cluster, { aboveTerm: term, not: from.name });
      assert.equal(next.node.name, to.name, 'the target is the new primary');
      term = next.term;
      const after = writers.map((w) => w.acked.length);
      await waitFor(() => writers.every((w, i) => w.acked.length >= after[i]! + 10 || w.errors.length > 0), {
        timeoutMs: 60_000,
        what: `writes through every proxy after switchover ${round}`,
      });
      const gaps = writers.map((w) => w.longestGapMs(startedMs, performance.now()));
      t.diagnostic(
        `switchover ${round} ${from.name} -> ${to.name}: ${measured.ms} ms in all, writes held ${measured.pauseMs} ms; longest gap between acknowledgements per writer: ${gaps.join('/')} ms`,
      );
      assert.deepEqual(
        writers.flatMap((w) => w.errors),
        [],
        'client errors during the switchover',
      );

      const run = await bench;
      assert.equal(run.code, 0, `pgbench failed:\n${run.stderr}\n${run.stdout}`);
      assert.doesNotMatch(run.stderr, /abort|error/i, `pgbench reported errors:\n${run.stderr}`);
      assert.match(run.stdout, /number of failed transactions: 0 /, run.stdout);

      await waitForStreamingBackup(cluster, from);
      assert.deepEqual(await primariesByPostgres(cluster), [to.name], 'exactly one writable primary');
      const log = events(from);
      assert.equal(
        log.filter((e) => e.command === 'pg_rewind').length,
        0,
        `${from.name} ran pg_rewind on a switchover`,
      );
      const rejoins = log.filter((e) => e.event === 'rejoin');
      assert.equal(
        rejoins.at(-1)?.how,
        'restarted',
        `${from.name} rejoined by ${String(rejoins.at(-1)?.how)}`,
      );
    }

    await Promise.all(writers.map((w) => w.stop()));
    assert.deepEqual(
      writers.flatMap((w) => w.errors),
      [],
      'client errors',
    );
    const final = order.at(-1)!;
    const rows = await cluster.sql<{ id: string }>(final, 'SELECT id::text FROM acked');
    const present = new Set(rows.map((r) => Number(r.id)));
    const lost = writers.flatMap((w) => w.acked).filter((id) => !present.has(id));
    assert.deepEqual(lost, [], 'acknowledged writes missing on the new primary');
    for (const node of cluster.nodes) {
      assert.equal(
        events(node).filter((e) => e.command === 'pg_rewind').length,
        0,
        `${node.name} ran pg_rewind`,
      );
    }
  });
});
