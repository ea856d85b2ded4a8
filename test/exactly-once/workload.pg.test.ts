// Issue 7, workload: 16 node-postgres clients insert 10,000 rows with unique ids
// through the proxies of a real 3-node cluster while the primary's postmaster is
// killed (kill -9) three times and Raft-led failover promotes a backup each time.
// Kills are driven by progress (25%, 50%, 75% of rows acknowledged), each once the
// cluster has a writable primary again and every node streams it; the clients are
// held at a mark until its kill happened, so all three land inside the workload.
//
// Keyed: every row present exactly once and every key ends in success (a retry
// with the same key after 40001/08007/57P0x gets the stored outcome).
// Unkeyed: every acknowledged row present, no row twice, the only errors are
// 40001/08007, each on a call that was open at a kill (it started before the
// kill, or before the new primary took over, and ended after the kill).
// On a loaded machine the cluster may also fail over by itself (an event-loop
// stall voids the leader's lease); a monitor records every term change, such a
// failover is reported as unplanned, and an error on a call open across it counts
// as an error at a failover. An error at no failover at all fails the test.
// If the cluster itself never regains a writable primary (a failover liveness bug
// seen at load 25-30), the test fails saying so.
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { startLocalCluster, type TestCluster } from '../support/cluster.ts';
import { keepLogsOnFailure, reports, waitForPrimary } from '../support/failover.ts';
import { waitFor } from '../support/wait.ts';
import { settled } from './settled.ts';
import { type Call, KEYED_RETRY, rowId, runWorkload, UNKEYED_ALLOWED } from './workload.ts';

const ROWS = Number(process.env.PGWARD_EO_WORKLOAD_ROWS ?? 10_000);
const CLIENTS = 16;
const KILLS = [0.25, 0.5, 0.75];
/** Bound on one variant's workload (about 35 s on a quiet machine, 60-115 s at load 20-30). */
const WORKLOAD_DEADLINE_MS = 360_000;
/** The clients run at most this far past a mark whose kill has not happened yet. */
const SLACK = 0.1;

interface Kill {
  node: string;
  term: number;
  pid: number;
  at: number;
  /** When a writable primary of a newer term was seen. */
  recoveredAt: number;
  acked: number;
}

/** Holds the workload at each mark until its kill was done. */
class KillDriver {
  acked = 0;
  readonly kills: Kill[] = [];
  private waiters: Array<() => void> = [];
  failed: unknown = null;

  constructor(
    private readonly cluster: TestCluster,
    private readonly rows: number,
  ) {}

  onAck = (): void => {
    this.acked++;
  };

  gate = async (): Promise<void> => {
    while (this.failed === null && this.kills.length < KILLS.length) {
      const limit = Math.floor(this.rows * (KILLS[this.kills.length]! + SLACK));
      if (this.acked < limit) return;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  };

  async run(): Promise<void> {
    try {
      let term = (await waitForPrimary(this.cluster, { timeoutMs: 120_000 })).term;
      for (const mark of KILLS) {
        await waitFor(() => this.acked >= Math.floor(this.rows * mark), {
          timeoutMs: 240_000,
          intervalMs: 10,
          what: `${mark * 100}% of the rows acknowledged (${this.acked} so far)`,
        });
        const primary = await settled(this.cluster, term, 240_000);
        const pid = primary.node.postmasterPid();
        assert.ok(pid !== null, `${primary.node.name} has no postmaster to kill`);
        const at = Date.now();
        process.kill(pid, 'SIGKILL');
        const acked = this.acked;
        const next = await waitForPrimary(this.cluster, { aboveTerm: primary.term, timeoutMs: 120_000 });
        term = next.term;
        this.kills.push({
          node: primary.node.name,
          term: primary.term,
          pid,
          at,
          recoveredAt: Date.now(),
          acked,
        });
        this.wake();
      }
    } catch (error) {
      this.failed = error;
      this.wake();
      throw error;
    }
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

/**
 * Watches the term of the writable primary during the workload, so a failover the
 * cluster starts by itself (on a loaded machine an event-loop stall voids the
 * leader's lease, and a backup takes over) is seen and reported, not mistaken for
 * an error at no failover. A window runs from the last sample of the old term to
 * the first of the new one.
 */
class TermMonitor {
  readonly windows: Array<{ from: number; to: number; term: number }> = [];
  private running = true;
  private loop: Promise<void> | null = null;

  constructor(private readonly cluster: TestCluster) {}

  start(): void {
    this.loop = (async () => {
      let last: { at: number; term: number } | null = null;
      while (this.running) {
        const at = Date.now();
        const terms = (await reports(this.cluster))
          .filter((r) => r.writablePrimary === r.reportedBy)
          .map((r) => r.term);
        if (terms.length > 0) {
          const term = Math.max(...terms);
          if (last !== null && term > last.term) this.windows.push({ from: last.at, to: at, term });
          last = { at, term };
        }
        await delay(100);
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

type Window = { from: number; to: number };

/** A failed call met a failover: it was open at some time inside the window. */
function windowMet(call: Call, windows: Window[]): Window | undefined {
  return windows.find((w) => call.start <= w.to && call.end >= w.from);
}

/** The kill a failed call met: it started before the new primary took over and ended after the kill. */
function killMet(call: Call, kills: Kill[]): Kill | undefined {
  return kills.find((k) => call.start <= k.recoveredAt && call.end >= k.at);
}

function tally(calls: Call[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const call of calls) out[call.result] = (out[call.result] ?? 0) + 1;
  return out;
}

/** True when no sidecar reports a writable primary for 30 s. */
async function withoutPrimary(cluster: TestCluster): Promise<boolean> {
  try {
    await waitForPrimary(cluster, { timeoutMs: 30_000 });
    return false;
  } catch {
    return true;
  }
}

async function storedCounts(cluster: TestCluster, table: string): Promise<Map<string, number>> {
  const primary = await waitForPrimary(cluster, { timeoutMs: 120_000 });
  const rows = await cluster.sql<{ id: string; n: number }>(
    primary.node,
    `SELECT id, count(*)::int AS n FROM ${table} GROUP BY id`,
  );
  return new Map(rows.map((r) => [r.id, r.n]));
}

async function variant(t: TestContext, cluster: TestCluster, keyed: boolean) {
  const table = keyed ? 'eo_workload_keyed' : 'eo_workload_unkeyed';
  const runId = keyed ? 'k' : 'u';
  const primary = await waitForPrimary(cluster, { timeoutMs: 120_000 });
  // No unique constraint on purpose: a row applied twice must show up as two rows.
  await cluster.sql(
    primary.node,
    `CREATE TABLE ${table} (id text NOT NULL, client int NOT NULL, form text NOT NULL,
       written_at timestamptz NOT NULL DEFAULT clock_timestamp())`,
  );
  const driver = new KillDriver(cluster, ROWS);
  const monitor = new TermMonitor(cluster);
  monitor.start();
  const began = Date.now();
  const killing = driver.run();
  killing.catch(() => {});
  // The monitor polls until stopped: stop it on every path, or the test process never exits.
  t.after(() => monitor.stop());
  const result = await runWorkload({
    urls: cluster.nodes.map((n) => n.proxyUrl),
    table,
    keyed,
    rows: ROWS,
    clients: CLIENTS,
    runId,
    gate: driver.gate,
    onAck: driver.onAck,
    deadline: began + WORKLOAD_DEADLINE_MS,
  });
  const driverError = await killing.then(
    () => null,
    (error: unknown) => error,
  );
  await monitor.stop();
  const pastDeadline = [...result.final.values()].filter((r) => r === 'deadline').length;
  if ((driverError !== null || pastDeadline > 0) && (await withoutPrimary(cluster))) {
    // Not an exactly-once outcome but a failover liveness failure (seen at load 25-30
    // after a new primary self-fenced while the killed one was rejoining): it fails the
    // test with that diagnosis, never passes quietly.
    throw new Error(
      `failover liveness: the cluster had no writable primary at the end (${pastDeadline} rows unsent)` +
        (driverError === null ? '' : `; the kill driver failed: ${String(driverError)}`),
    );
  }
  if (driverError !== null) throw driverError;
  const workloadMs = Date.now() - began;
  // Term changes no kill explains: failovers the cluster started by itself.
  const unplanned = monitor.windows.filter(
    (w) => !driver.kills.some((k) => w.to >= k.at && w.from <= k.recoveredAt),
  );
  const stored = await storedCounts(cluster, table);

  const errors = result.calls.filter((c) => c.result !== 'ok' && c.result !== 'duplicate');
  const summary = {
    variant: keyed ? 'keyed' : 'unkeyed',
    rows: ROWS,
    workloadMs,
    calls: result.calls.length,
    rowsPastDeadline: pastDeadline,
    byResult: tally(result.calls),
    kills: driver.kills.map((k) => ({
      node: k.node,
      term: k.term,
      ackedAtKill: k.acked,
      failoverMs: k.recoveredAt - k.at,
    })),
    // Each error relative to the kill it met: form, start and end in ms after the kill.
    // Rows whose last answer was 08007 (outcome unknown): how many turned out stored.
    unknownOutcomes: [...result.final]
      .filter(([, r]) => r === '08007')
      .map(([row]) => stored.get(rowId(runId, row)) ?? 0),
    unplannedFailovers: unplanned.map((w) => ({ term: w.term, atMs: w.to - began })),
    errors: errors.map((c) => {
      const k = killMet(c, driver.kills);
      const w = k === undefined ? windowMet(c, unplanned) : undefined;
      const at =
        k !== undefined
          ? `kill ${c.start - k.at}..${c.end - k.at}`
          : w !== undefined
            ? 'unplanned failover'
            : 'NO FAILOVER';
      return `${c.result} ${c.form}#${c.attempt} ${at}`;
    }),
  };
  t.diagnostic(JSON.stringify(summary));
  console.log(`[eo-workload] ${JSON.stringify(summary)}`);

  assert.equal(driver.kills.length, KILLS.length, 'every kill happened during the workload');
  const outsideFailovers = errors.filter(
    (c) => killMet(c, driver.kills) === undefined && windowMet(c, unplanned) === undefined,
  );
  assert.deepEqual(outsideFailovers, [], 'errors on calls that met no kill and no failover');

  if (keyed) {
    for (const c of errors) assert.ok(KEYED_RETRY.has(c.result), `keyed call got ${JSON.stringify(c)}`);
    const duplicatesFirst = result.calls.filter((c) => c.result === 'duplicate' && c.attempt === 1);
    assert.deepEqual(duplicatesFirst, [], 'PW004 only on a retry of a key that committed');
    const notOk = [...result.final].filter(([, r]) => r !== 'ok' && r !== 'duplicate');
    assert.deepEqual(notOk, [], 'every key ends in success');
    assert.equal(result.final.size, ROWS);
    const wrong: string[] = [];
    for (let row = 0; row < ROWS; row++) {
      const n = stored.get(rowId(runId, row)) ?? 0;
      if (n !== 1) wrong.push(`${rowId(runId, row)}: ${n} rows`);
    }
    assert.deepEqual(wrong.slice(0, 20), [], `${wrong.length} keys not stored exactly once`);
    assert.equal(stored.size, ROWS, 'no row nobody sent');
  } else {
    for (const c of errors) assert.ok(UNKEYED_ALLOWED.has(c.result), `unkeyed call got ${JSON.stringify(c)}`);
    const problems: string[] = [];
    for (const [row, final] of result.final) {
      const n = stored.get(rowId(runId, row)) ?? 0;
      if (final === 'ok' && n !== 1) problems.push(`${rowId(runId, row)} acknowledged, stored ${n} times`);
      if (final === '08007' && n > 1) problems.push(`${rowId(runId, row)} unknown, stored ${n} times`);
      if (final !== 'ok' && final !== '08007') problems.push(`${rowId(runId, row)} ended with ${final}`);
    }
    // 40001 promises nothing was committed: a row whose only answers were 40001 ... then ok is stored once (above).
    assert.deepEqual(problems.slice(0, 20), [], `${problems.length} rows break the contract`);
    assert.equal(result.final.size, ROWS);
    for (const id of stored.keys()) assert.match(id, /^u-\d+$/, 'no row nobody sent');
  }
}

test('exactly-once workload: 16 clients, 10k rows, 3 kills of the primary postmaster', {
  timeout: 900_000,
}, async (t) => {
  const cluster = await startLocalCluster({ nodes: 3 });
  t.after(() => cluster.stop());
  await keepLogsOnFailure(cluster, async () => {
    // Without PGWARD_TEST_FAILPOINTS=1 the sidecars have no failpoint routes, token or not.
    const probe = await fetch(`${cluster.nodes[0]!.apiUrl}/test/failpoints`, {
      headers: { authorization: `Bearer ${cluster.apiToken}` },
    });
    assert.equal(probe.status, 404, 'failpoint routes are off by default');
    await t.test('keyed: every row exactly once, every key succeeds', (tt) => variant(tt, cluster, true));
    await t.test('unkeyed: acknowledged rows exactly once, errors only 40001/08007 at a kill', (tt) =>
      variant(tt, cluster, false),
    );
  });
});
