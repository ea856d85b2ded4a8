// Reference §5.1.2: when the proxy learns on the SAME primary that a commit whose
// connection was lost did commit, that commit may never have finished waiting for
// synchronous replication (here: its backend is terminated while the standby is
// frozen). It is acknowledged only once the synchronous standby flushed it; if that
// does not happen within the bound the client gets 08007, never a success a
// failover could take back.
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import pg from 'pg';
import { installLedger } from '../../src/exactly-once/ledger.ts';
import { waitFor } from '../support/wait.ts';
import { startPairProxy } from './pair-proxy.ts';
import { type PgNode, type PgPair, postgresProcesses, startPair } from './pg-pair.ts';

const TIMEOUT_MS = 120_000;
/** How long a frozen standby must keep the acknowledgement back (it cannot flush anything meanwhile). */
const HELD_BACK_MS = 1500;

interface Harness {
  pair: PgPair;
  connect(): Promise<pg.Client>;
  freezeStandby(): void;
  thawStandby(): void;
}

async function harness(t: TestContext, resolveTimeoutMs: number): Promise<Harness> {
  const pair = await startPair(t);
  const direct = new pg.Client({ host: '127.0.0.1', port: pair.primary.port, user: 'postgres' });
  direct.on('error', () => {});
  await direct.connect();
  await installLedger(direct);
  await direct.end();
  await pair.primary.query('CREATE TABLE items (name text NOT NULL)');
  await pair.primary.query("ALTER SYSTEM SET synchronous_standby_names = 'ANY 1 (s1)'");
  await pair.primary.query('SELECT pg_reload_conf()');
  await waitFor(
    async () =>
      (await pair.primary.query("SELECT 1 FROM pg_stat_replication WHERE sync_state = 'quorum'")).length > 0,
    { timeoutMs: TIMEOUT_MS, what: 'the standby synchronous' },
  );
  const { port } = await startPairProxy(t, pair.primary, { resolveTimeoutMs });
  // Read while the standby runs: pg-pair's cleanup removes its directory (and pid file) first.
  const standbyPids = postgresProcesses(pair.standby.postmasterPid());
  const signalStandby = (signal: NodeJS.Signals) => {
    for (const pid of standbyPids) {
      try {
        process.kill(pid, signal);
      } catch {
        // exited meanwhile
      }
    }
  };
  t.after(() => signalStandby('SIGCONT'));
  return {
    pair,
    async connect() {
      const client = new pg.Client({
        host: '127.0.0.1',
        port,
        user: 'postgres',
      });
      client.on('error', () => {});
      await client.connect();
      t.after(() => client.end().catch(() => {}));
      return client;
    },
    freezeStandby: () => signalStandby('SIGSTOP'),
    thawStandby: () => signalStandby('SIGCONT'),
  };
}

type Told = { ok: true } | { ok: false; code: string };

function settle(promise: Promise<unknown>): { told: Promise<Told>; settled: () => boolean } {
  let done = false;
  const told = promise.then(
    (): Told => ({ ok: true }),
    (error: { code?: string }): Told => ({ ok: false, code: error.code ?? 'none' }),
  );
  told.finally(() => {
    done = true;
  });
  return { told, settled: () => done };
}

/** The backend pids of the `n` commits waiting for the synchronous standby, once exactly that many wait. */
function syncRepWaiters(h: Harness, n: number): Promise<number[]> {
  return waitFor(
    async () => {
      const rows = await h.pair.primary.query<{ pid: number }>(
        "SELECT pid FROM pg_stat_activity WHERE wait_event = 'SyncRep'",
      );
      return rows.length === n ? rows.map((r) => r.pid) : undefined;
    },
    { timeoutMs: TIMEOUT_MS, what: `${n} commits waiting for the synchronous standby` },
  );
}

/** Three commits wait on the frozen standby: autocommit unkeyed, autocommit keyed, explicit COMMIT. Their backends are terminated. */
async function commitsCutOffFromTheirSyncWait(h: Harness): Promise<Array<ReturnType<typeof settle>>> {
  const [unkeyed, keyed, explicit] = [await h.connect(), await h.connect(), await h.connect()];
  await explicit.query('BEGIN');
  await explicit.query("INSERT INTO items VALUES ('explicit')");
  h.freezeStandby();
  const calls = [
    settle(unkeyed.query("INSERT INTO items VALUES ('unkeyed')")),
    settle(keyed.query("INSERT INTO items VALUES ('keyed') /*pgward_key='sync-k1'*/")),
    settle(explicit.query('COMMIT')),
  ];
  const waiting = await syncRepWaiters(h, 3);
  await h.pair.primary.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [waiting]);
  return calls;
}

async function rowsOn(node: PgNode): Promise<string[]> {
  return (await node.query<{ name: string }>('SELECT name FROM items ORDER BY name')).map((r) => r.name);
}

/**
 * Once all of `calls` are committed on the primary (`what`), none is acknowledged
 * for HELD_BACK_MS: the frozen standby has flushed none of them.
 */
async function assertHeldBack(
  h: Harness,
  calls: Array<ReturnType<typeof settle>>,
  what: string,
): Promise<void> {
  await waitFor(async () => (await rowsOn(h.pair.primary)).length === calls.length, {
    timeoutMs: TIMEOUT_MS,
    what,
  });
  const heldUntil = Date.now() + HELD_BACK_MS;
  await waitFor(async () => Date.now() >= heldUntil || calls.some((c) => c.settled()), {
    timeoutMs: TIMEOUT_MS,
    what: 'the hold-back window',
  });
  assert.deepEqual(
    calls.map((c) => c.settled()),
    calls.map(() => false),
    'acknowledged before the synchronous standby flushed',
  );
}

test('same primary: a commit cut off from its sync wait is acknowledged once the standby flushed it', {
  timeout: 300_000,
}, async (t) => {
  const h = await harness(t, 60_000);
  const calls = await commitsCutOffFromTheirSyncWait(h);
  // Committed locally (visible on the primary) but not on the standby: no acknowledgement yet.
  await assertHeldBack(h, calls, 'the three commits visible on the primary');
  h.thawStandby();
  const told = await Promise.all(calls.map((c) => c.told));
  assert.deepEqual(told, [{ ok: true }, { ok: true }, { ok: true }]);
  await waitFor(async () => (await rowsOn(h.pair.standby)).length === 3, {
    timeoutMs: TIMEOUT_MS,
    what: 'the rows on the standby',
  });
  assert.deepEqual(await rowsOn(h.pair.standby), ['explicit', 'keyed', 'unkeyed']);
});

test('same primary: the standby never flushes within the bound → 08007, not success', {
  timeout: 300_000,
}, async (t) => {
  const h = await harness(t, 3000);
  const calls = await commitsCutOffFromTheirSyncWait(h);
  const told = await Promise.all(calls.map((c) => c.told));
  assert.deepEqual(told, [
    { ok: false, code: '08007' },
    { ok: false, code: '08007' },
    { ok: false, code: '08007' },
  ]);
  h.thawStandby();
  // The outcome was unknown to the client; the commits did happen (nothing applied twice).
  await waitFor(async () => (await rowsOn(h.pair.standby)).length === 3, {
    timeoutMs: TIMEOUT_MS,
    what: 'the rows on the standby',
  });
});

test('same primary: a COMMIT whose sync wait was cancelled (pg_cancel_backend) is acknowledged only after the flush', {
  timeout: 300_000,
}, async (t) => {
  const h = await harness(t, 60_000);
  const [autocommit, explicit] = [await h.connect(), await h.connect()];
  await explicit.query('BEGIN');
  await explicit.query("INSERT INTO items VALUES ('explicit')");
  h.freezeStandby();
  const calls = [
    settle(autocommit.query("INSERT INTO items VALUES ('autocommit')")),
    settle(explicit.query('COMMIT')),
  ];
  const waiting = await syncRepWaiters(h, 2);
  // PostgreSQL stops waiting, warns "might not have been replicated", and reports the COMMIT done.
  await h.pair.primary.query('SELECT pg_cancel_backend(pid) FROM unnest($1::int[]) AS pid', [waiting]);
  await assertHeldBack(h, calls, 'both commits visible on the primary');
  h.thawStandby();
  assert.deepEqual(await Promise.all(calls.map((c) => c.told)), [{ ok: true }, { ok: true }]);
  assert.deepEqual(await rowsOn(h.pair.standby), ['autocommit', 'explicit']);
});
