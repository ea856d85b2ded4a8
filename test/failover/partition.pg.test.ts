// A real network partition of the primary (DESIGN.md "Failover, step by step",
// fencing): each node runs in its own network namespace (`pgward up --netns`) and
// iptables in the primary's namespace drops all traffic to and from the other
// nodes, while clients in the root namespace still reach every proxy. Writes go
// on both sides: through the isolated primary's proxy and through a backup's.
// The majority elects a new primary; the isolated PostgreSQL acknowledges no write
// sent after the partition (no backup confirms its synchronous commits, its lease
// lapses, its sidecar fences it); after the heal it rejoins as a streaming backup
// of the new timeline, every acknowledged write is on the new primary, and exactly
// one PostgreSQL takes writes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { netnsUnavailable } from '../../src/local/netns.ts';
import { startLocalCluster, type TestCluster, type TestNode } from '../support/cluster.ts';
import {
  keepLogsOnFailure,
  primariesByPostgres,
  reports,
  waitForPrimary,
  waitForStreamingBackup,
} from '../support/failover.ts';
import { summarize, TaggedWriter, TIMELINE_SQL, timelineOf } from '../support/tagged-writes.ts';
import { waitFor } from '../support/wait.ts';

const TABLE = 'partition_writes';
/** The partition outlasts the election by this much, so the isolated side's fencing is exercised. */
const HOLD_AFTER_ELECTION_MS = 4000;

interface Row {
  id: number;
  addr: string;
  tli: number;
}

/** Tags each row with the serving PostgreSQL's address: in namespaces every node has its own host. */
function insertWithAddr(client: pg.Client, id: number, via: string): Promise<unknown> {
  return client.query(
    `INSERT INTO ${TABLE} (id, via, addr, tli) VALUES ($1, $2, host(inet_server_addr()), ${TIMELINE_SQL})`,
    [id, via],
  );
}

/** One client writing through one proxy in a loop; reconnects after any error. */
function writer(via: string, url: string, nextId: () => number): TaggedWriter {
  return new TaggedWriter(via, url, nextId, { reconnectMs: 200, insert: insertWithAddr });
}

async function readRows(cluster: TestCluster, node: TestNode): Promise<Map<number, Row>> {
  const rows = await cluster.sql<Row>(node, `SELECT id, addr, tli FROM ${TABLE} ORDER BY id`);
  return new Map(rows.map((r) => [r.id, r]));
}

const unavailable = netnsUnavailable();

test('partition of the primary (netns + iptables) with writes on both sides: the majority fails over, the isolated primary acknowledges nothing after the cut, it rejoins after the heal, nothing acknowledged is lost', {
  timeout: 900_000,
  skip: unavailable === null ? false : `needs network namespaces: ${unavailable}`,
}, async (t) => {
  const cluster = await startLocalCluster({ nodes: 3, netns: true });
  t.after(() => cluster.stop());
  await keepLogsOnFailure(cluster, async () => {
    const first = await waitForPrimary(cluster);
    const old = first.node;
    const others = cluster.nodes.filter((n) => n !== old);
    const backup = others[0]!;
    await cluster.sql(old, `CREATE TABLE ${TABLE} (id int PRIMARY KEY, via text, addr text, tli int)`);
    const oldTimeline = await timelineOf(cluster, old);

    let id = 0;
    const nextId = () => ++id;
    // Two clients on the isolated side, two on the majority side.
    const writers = [
      writer(`${old.name}-a`, old.proxyUrl, nextId),
      writer(`${old.name}-b`, old.proxyUrl, nextId),
      writer(`${backup.name}-a`, backup.proxyUrl, nextId),
      writer(`${backup.name}-b`, backup.proxyUrl, nextId),
    ];
    const isolatedSide = writers.slice(0, 2);
    t.after(() => Promise.all(writers.map((w) => w.stop())));
    for (const w of writers) w.start();
    await waitFor(() => writers.every((w) => w.acknowledged().length >= 5), {
      timeoutMs: 60_000,
      what: 'every writer acknowledged before the partition',
    });

    cluster.isolate(old);
    const cutAtMs = performance.now();
    t.after(() => {
      try {
        cluster.heal(old);
      } catch {
        // stopped already: the namespace and its rules are gone
      }
    });

    const next = await waitForPrimary(cluster, {
      aboveTerm: first.term,
      not: old.name,
      timeoutMs: 90_000,
    });
    const electedAtMs = performance.now();
    // The majority side takes writes on the new timeline while the partition lasts.
    await waitFor(
      async () => {
        const rows = await readRows(cluster, next.node);
        return writers
          .slice(2)
          .some((w) =>
            w
              .acknowledged()
              .some((a) => a.sentAtMs > electedAtMs && (rows.get(a.id)?.tli ?? 0) > oldTimeline),
          );
      },
      {
        timeoutMs: 90_000,
        intervalMs: 200,
        what: 'a write acknowledged by the new primary during the partition',
      },
    );
    // The isolated PostgreSQL, reachable from here, cannot acknowledge a commit either.
    let directCommit: 'acknowledged' | 'failed' | 'pending' = 'pending';
    const direct = new pg.Client({ connectionString: old.pgUrl, connectionTimeoutMillis: 5000 });
    direct.on('error', () => {});
    t.after(() => direct.end().catch(() => {}));
    direct
      .connect()
      .then(() => direct.query(`INSERT INTO ${TABLE} (id, via, addr, tli) VALUES (-1, 'direct', '', 0)`))
      .then(() => {
        directCommit = 'acknowledged';
      })
      .catch(() => {
        directCommit = 'failed';
      });
    const holdUntil = electedAtMs + HOLD_AFTER_ELECTION_MS;
    while (performance.now() < holdUntil) await delay(100);
    // Still cut off: the isolated sidecar never learned the new term.
    const isolatedView = (await reports(cluster)).find((r) => r.reportedBy === old.name);
    assert.ok(
      isolatedView === undefined || isolatedView.term < next.term,
      `the isolated node learned term ${isolatedView?.term} through the partition`,
    );
    assert.notEqual(directCommit, 'acknowledged', 'the isolated old primary acknowledged a direct commit');

    cluster.heal(old);
    const healedAtMs = performance.now();
    await waitForStreamingBackup(cluster, old, 180_000);
    // The isolated side's proxy routes to the new primary again.
    await waitFor(() => isolatedSide.some((w) => w.acknowledged().some((a) => a.sentAtMs > healedAtMs)), {
      timeoutMs: 90_000,
      what: `a write through ${old.name}'s proxy acknowledged after the heal`,
    });
    await Promise.all(writers.map((w) => w.stop()));
    assert.notEqual(directCommit, 'acknowledged', 'the old primary acknowledged a direct commit');

    const all = writers.flatMap((w) => w.writes);
    t.diagnostic(
      `isolated ${old.name} at term ${first.term}; ${next.node.name} primary of term ${next.term}`,
    );
    for (const w of writers) t.diagnostic(`${w.name}: ${summarize(w.writes)}`);
    t.diagnostic(`election ${Math.round(electedAtMs - cutAtMs)} ms after the cut`);

    assert.deepEqual(await primariesByPostgres(cluster), [next.node.name], 'exactly one writable primary');
    const views = await reports(cluster);
    const claimed = new Set(views.map((v) => v.writablePrimary).filter((p) => p !== null));
    assert.deepEqual([...claimed], [next.node.name], 'every sidecar names the same writable primary');

    const rows = await readRows(cluster, next.node);
    const lost = all.filter((w) => w.outcome === 'ok' && !rows.has(w.id));
    assert.deepEqual(
      lost.map((w) => `${w.id} via ${w.writer}`),
      [],
      'acknowledged writes missing on the new primary',
    );
    assert.ok(!rows.has(-1), 'the direct commit on the isolated primary survived');
    // 40001 promises nothing was committed: such a write must be absent.
    const failedApplied = all.filter((w) => w.outcome === 'error' && w.error === '40001' && rows.has(w.id));
    assert.deepEqual(
      failedApplied.map((w) => `${w.id} via ${w.writer}`),
      [],
      'writes answered 40001 (not committed) that are stored on the new primary',
    );
    // No write sent after the cut was acknowledged by the old PostgreSQL in the old term.
    const zombie = all.filter((w) => {
      const row = rows.get(w.id);
      return (
        w.outcome === 'ok' &&
        w.sentAtMs > cutAtMs &&
        row !== undefined &&
        row.addr === old.host &&
        row.tli <= oldTimeline
      );
    });
    assert.deepEqual(
      zombie.map((w) => `${w.id} via ${w.writer}`),
      [],
      'writes acknowledged by the isolated old primary after the cut',
    );
    for (const w of all) {
      const row = rows.get(w.id);
      if (w.outcome === 'ok' && w.sentAtMs > cutAtMs && row !== undefined) {
        assert.ok(
          row.tli > oldTimeline,
          `write ${w.id} sent after the cut was served on timeline ${row.tli}`,
        );
      }
    }
    assert.ok(
      isolatedSide.some((w) => w.acknowledged().some((a) => a.sentAtMs < cutAtMs)),
      'the isolated side wrote before the cut',
    );
  });
});
