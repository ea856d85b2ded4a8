// The zombie-primary scenario on a real local cluster (issue 6): SIGSTOP the
// primary's sidecar (or its whole node: sidecar, postmaster and every PostgreSQL
// process) for PAUSE_MS while clients write through every proxy, let the backups
// elect a new primary, SIGCONT, and check the fencing rules:
//   - exactly one writable primary at the end, and every sidecar names it;
//   - every acknowledged write is on it;
//   - no write sent after the old term ended was acknowledged by the old primary
//     (rows carry the serving port and timeline); for the client of the old
//     primary's own proxy the old term ended when it froze: once awake, its proxy
//     must hold and then route to the new primary, never to its own PostgreSQL;
//   - the COMMIT of a transaction left open on the old primary's proxy is never
//     forwarded once awake: it fails with 40001 and nothing of it is stored; a commit
//     sent straight to an old primary that kept running is never acknowledged;
//   - the old primary rejoins as a backup streaming the current timeline.
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import type { TestCluster } from './cluster.ts';
import { settledNewPrimary, waitForPrimary, waitForStreamingBackup } from './failover.ts';
import {
  insertTagged,
  lostWrites,
  postgresProcesses,
  readTaggedRows,
  servedByOldPrimary,
  signalAll,
  startWritersOnEveryProxy,
  summarize,
  type TaggedWriter,
} from './tagged-writes.ts';
import { waitFor } from './wait.ts';

export const PAUSE_MS = 3000;
const OPEN_TX_ID = 1_000_000;
const DIRECT_ID = 2_000_000;

type Outcome = { state: 'pending' } | { state: 'ok' } | { state: 'error'; code: string };

function track(promise: Promise<unknown>): { outcome: Outcome } {
  const box: { outcome: Outcome } = { outcome: { state: 'pending' } };
  promise.then(
    () => {
      box.outcome = { state: 'ok' };
    },
    (error: unknown) => {
      const e = error as { code?: string; message?: string };
      box.outcome = { state: 'error', code: e.code ?? e.message ?? String(error) };
    },
  );
  return box;
}

export interface ZombieRun {
  /** Resumes anything still stopped and ends the clients; safe to call twice (call before cluster.stop()). */
  cleanup(): Promise<void>;
  /** The scenario; throws an assertion error on a violation. Returns a summary line. */
  run(): Promise<string>;
}

export function zombieScenario(cluster: TestCluster, pause: 'sidecar' | 'node'): ZombieRun {
  let stopped: number[] = [];
  const writers: TaggedWriter[] = [];
  const clients: pg.Client[] = [];
  const resume = () => {
    signalAll(stopped, 'SIGCONT');
    stopped = [];
  };
  const openClient = async (url: string) => {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 20_000 });
    client.on('error', () => {});
    clients.push(client);
    await client.connect();
    return client;
  };

  async function run(): Promise<string> {
    const first = await waitForPrimary(cluster);
    const old = first.node;
    const { timeline: oldTimeline } = await startWritersOnEveryProxy(cluster, old, writers);
    const viaOld = writers.find((w) => w.name === `via-${old.name}`)!;

    // A transaction left open on the old primary's proxy across the pause.
    const openTx = await openClient(old.proxyUrl);
    await openTx.query('BEGIN');
    await insertTagged(openTx, OPEN_TX_ID, 'open-tx');

    const sidecar = old.sidecarPid();
    assert.ok(sidecar !== null, `${old.name} has a sidecar`);
    const pids = pause === 'sidecar' ? [sidecar] : [sidecar, ...postgresProcesses(old)];
    signalAll(pids, 'SIGSTOP');
    stopped = pids;
    const frozenAtMs = performance.now();

    const next = await waitForPrimary(cluster, {
      aboveTerm: first.term,
      not: old.name,
      among: cluster.nodes.filter((n) => n !== old),
    });
    const newTermAtMs = performance.now();

    // An old primary whose PostgreSQL kept running is still out of recovery, but no
    // backup confirms a commit for it any more: a commit sent straight to it hangs.
    let direct: { outcome: Outcome } | null = null;
    if (pause === 'sidecar') {
      const orphan = await openClient(old.pgUrl);
      const inRecovery = await orphan.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
      assert.equal(inRecovery.rows[0]?.r, false, 'the paused primary still runs as a primary');
      direct = track(insertTagged(orphan, DIRECT_ID, 'direct'));
    }
    await delay(Math.max(0, frozenAtMs + PAUSE_MS - performance.now()));
    resume();
    const resumedAtMs = performance.now();
    const commit = track(openTx.query('COMMIT'));

    await waitForStreamingBackup(cluster, old);
    // The old primary's proxy serves its client again, through the new primary.
    await waitFor(() => viaOld.acknowledged().some((w) => w.sentAtMs > resumedAtMs), {
      timeoutMs: 60_000,
      what: `a write through ${old.name}'s proxy after it woke`,
    });
    await waitFor(() => commit.outcome.state !== 'pending', {
      timeoutMs: 60_000,
      what: 'the COMMIT of the transaction left open on the old primary to end',
    });
    for (const writer of writers) await writer.stop();

    const primary = await settledNewPrimary(cluster, old);

    const stored = await readTaggedRows(cluster, primary);
    const writes = writers.flatMap((w) => w.writes);
    const violations = [
      ...lostWrites(writes, stored),
      // Every client: nothing the old primary acknowledged once a new term had a primary.
      ...servedByOldPrimary(writes, stored, newTermAtMs, { port: old.pgPort, timeline: oldTimeline }),
      // Its own proxy's client: nothing from the old primary once it froze.
      ...servedByOldPrimary(viaOld.writes, stored, frozenAtMs, { port: old.pgPort, timeline: oldTimeline }),
    ];
    // Its lease ran out while it was frozen: the woken proxy never forwards the COMMIT
    // to its PostgreSQL; it holds it until the new term fences the transaction (40001).
    if (commit.outcome.state !== 'error' || commit.outcome.code !== '40001')
      violations.push(
        `the COMMIT of the transaction open across the pause ended ${JSON.stringify(commit.outcome)}, not 40001`,
      );
    if (stored.has(OPEN_TX_ID)) violations.push('the transaction open across the pause was committed');
    if (direct !== null) {
      if (direct.outcome.state === 'ok')
        violations.push('a commit straight on the old primary was acknowledged');
      if (stored.has(DIRECT_ID))
        violations.push('a commit straight on the old primary reached the new primary');
    }
    const acked = writes.filter((w) => w.outcome === 'ok').length;
    assert.ok(acked > 0);
    const summary =
      `${pause} pause: term ${first.term} -> ${next.term} (${next.node.name} in ${Math.round(newTermAtMs - frozenAtMs)} ms), ` +
      `final primary ${primary.name}; writes ${summarize(writes)}; stored ${stored.size}; ` +
      `open tx COMMIT: ${JSON.stringify(commit.outcome)}; direct commit: ${JSON.stringify(direct?.outcome ?? null)}`;
    assert.deepEqual(violations, [], summary);
    return summary;
  }

  return {
    run,
    async cleanup() {
      resume();
      for (const writer of writers) await writer.stop().catch(() => {});
      for (const client of clients) await client.end().catch(() => {});
    },
  };
}
