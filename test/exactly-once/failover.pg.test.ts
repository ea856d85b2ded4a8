// Fault injection (reference §5.8): the proxy pauses a commit at a named point,
// the test kills the whole primary (postmaster and every child), promotes the
// standby after recording S, and tells the proxy the new view. For each point a
// keyed and an unkeyed request are in flight together. Checked: what each client
// was told matches what the new primary holds, and nothing is applied twice.
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import pg from 'pg';
import type { StaticTopology } from '../../src/cluster/view.ts';
import { armFailpoint, disarmAllFailpoints, type FailpointName } from '../../src/exactly-once/failpoints.ts';
import { installLedger } from '../../src/exactly-once/ledger.ts';
import { waitFor } from '../support/wait.ts';
import { pairView, startPairProxy } from './pair-proxy.ts';
import { killAll, type PgNode, type PgPair, postgresProcesses, promote, startPair } from './pg-pair.ts';
import { assertTruthful, outcome, retryKeyed, type Told } from './told.ts';

interface Harness {
  pair: PgPair;
  topology: StaticTopology;
  keyed: pg.Client;
  unkeyed: pg.Client;
  connect(): Promise<pg.Client>;
}

async function harness(t: TestContext): Promise<Harness> {
  const pair = await startPair(t);
  await installLedger(await connectDirect(t, pair.primary));
  await pair.primary.query('CREATE TABLE items (name text NOT NULL)');
  const { topology, port } = await startPairProxy(t, pair.primary, { resolveTimeoutMs: 60_000 });
  t.after(() => disarmAllFailpoints());
  const connect = async () => {
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres' });
    client.on('error', () => {});
    await client.connect();
    t.after(() => client.end().catch(() => {}));
    return client;
  };
  return { pair, topology, keyed: await connect(), unkeyed: await connect(), connect };
}

async function connectDirect(t: TestContext, node: PgNode): Promise<pg.Client> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: node.port,
    user: 'postgres',
    database: 'postgres',
  });
  client.on('error', () => {});
  await client.connect();
  t.after(() => client.end().catch(() => {}));
  return client;
}

/**
 * Sends a keyed and an unkeyed insert, pauses both at `point`, kills the primary,
 * promotes the standby and publishes the new view, then releases them.
 * `beforeKill` arranges what the standby will have of the commit.
 */
async function scenario(
  t: TestContext,
  point: FailpointName,
  setup: (h: Harness) => Promise<void>,
  beforeKill: (h: Harness) => Promise<void> = async () => {},
): Promise<{ keyed: Told; unkeyed: Told; keyedRows: number; unkeyedRows: number }> {
  const h = await harness(t);
  await setup(h);
  const paused = armFailpoint(point, 2);
  const keyedCall = outcome(
    retryKeyed(h.keyed, h.connect, "INSERT INTO items VALUES ('keyed') /*pgward_key='k1'*/"),
  );
  const unkeyedCall = outcome(h.unkeyed.query("INSERT INTO items VALUES ('unkeyed')"));
  await paused.reached;
  await beforeKill(h);
  killAll(postgresProcesses(h.pair.primary.postmasterPid()));
  const s = await promote(h.pair.standby);
  await waitFor(async () => (await h.pair.standby.query('SELECT pg_is_in_recovery() AS r'))[0]?.r === false, {
    timeoutMs: 60_000,
    what: 'the standby promoted',
  });
  h.topology.set(pairView(2, h.pair.standby, s));
  paused.release();
  const [keyed, unkeyed] = await Promise.all([keyedCall, unkeyedCall]);
  const count = async (name: string) =>
    Number(
      (await h.pair.standby.query('SELECT count(*)::int AS n FROM items WHERE name = $1', [name]))[0]?.n,
    );
  return { keyed, unkeyed, keyedRows: await count('keyed'), unkeyedRows: await count('unkeyed') };
}

/** Makes every COMMIT wait on synchronous replication forever (no standby has that name). */
async function commitsWaitForever(h: Harness): Promise<void> {
  await h.pair.primary.query("ALTER SYSTEM SET synchronous_standby_names = 'ANY 1 (nobody)'");
  await h.pair.primary.query('SELECT pg_reload_conf()');
}

test('killed before the fence: nothing committed; the keyed request is re-run on the new primary', async (t) => {
  const r = await scenario(t, 'before-fence', async () => {});
  assertTruthful(r.keyed, r.keyedRows, 'keyed');
  assertTruthful(r.unkeyed, r.unkeyedRows, 'unkeyed');
  assert.deepEqual(r.keyed, { ok: true });
  assert.deepEqual(r.unkeyed, { ok: false, code: '40001' });
});

test('killed between fence and COMMIT: not committed (40001), keyed re-run succeeds once', async (t) => {
  const r = await scenario(t, 'between-fence-and-commit', async () => {});
  assertTruthful(r.keyed, r.keyedRows, 'keyed');
  assertTruthful(r.unkeyed, r.unkeyedRows, 'unkeyed');
  assert.deepEqual(r.keyed, { ok: true });
  assert.deepEqual(r.unkeyed, { ok: false, code: '40001' });
});

test('killed during the sync wait, commit not replicated: L > S or aborted → 40001; keyed re-run once', async (t) => {
  let walsenders: number[] = [];
  const r = await scenario(
    t,
    'commit-sent',
    async (h) => {
      await commitsWaitForever(h);
      // Freeze the walsender: the standby gets nothing more, the commit stays local.
      const rows = await h.pair.primary.query<{ pid: number }>('SELECT pid FROM pg_stat_replication');
      walsenders = rows.map((row) => row.pid);
      for (const pid of walsenders) process.kill(pid, 'SIGSTOP');
    },
    async (h) => {
      await waitFor(
        async () =>
          (await h.pair.primary.query("SELECT 1 FROM pg_stat_activity WHERE wait_event = 'SyncRep'"))
            .length === 2,
        { timeoutMs: 30_000, what: 'both COMMITs waiting on synchronous replication' },
      );
    },
  );
  assertTruthful(r.keyed, r.keyedRows, 'keyed');
  assertTruthful(r.unkeyed, r.unkeyedRows, 'unkeyed');
  assert.deepEqual(r.keyed, { ok: true });
  assert.deepEqual(r.unkeyed, { ok: false, code: '40001' });
});

test('killed after the commit reached the backup but before the ack: the client gets success', async (t) => {
  const r = await scenario(t, 'commit-sent', commitsWaitForever, async (h) => {
    await waitFor(
      async () =>
        (await h.pair.primary.query("SELECT 1 FROM pg_stat_activity WHERE wait_event = 'SyncRep'")).length ===
        2,
      { timeoutMs: 30_000, what: 'both COMMITs waiting on synchronous replication' },
    );
    const [{ lsn }] = (await h.pair.primary.query<{ lsn: string }>(
      'SELECT pg_current_wal_lsn()::text AS lsn',
    )) as [{ lsn: string }];
    await waitFor(
      async () =>
        (await h.pair.standby.query('SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok', [lsn]))[0]?.ok ===
        true,
      { timeoutMs: 30_000, what: 'the standby replaying both commits' },
    );
  });
  assertTruthful(r.keyed, r.keyedRows, 'keyed');
  assertTruthful(r.unkeyed, r.unkeyedRows, 'unkeyed');
  assert.deepEqual(r.keyed, { ok: true });
  assert.deepEqual(r.unkeyed, { ok: true });
});

test('explicit transactions with the pipelined fence: COMMITs replicated but unacknowledged succeed once', async (t) => {
  const h = await harness(t);
  await commitsWaitForever(h);
  const transfer = async (client: pg.Client, name: string, key: string | null) => {
    await client.query('BEGIN');
    if (key !== null) await client.query("SELECT set_config('pgward.idempotency_key', $1, true)", [key]);
    await client.query('INSERT INTO items VALUES ($1)', [name]);
    await client.query('COMMIT');
  };
  const keyedCall = outcome(transfer(h.keyed, 'keyed-tx', 'tx-1'));
  const unkeyedCall = outcome(transfer(h.unkeyed, 'unkeyed-tx', null));
  await waitFor(
    async () =>
      (await h.pair.primary.query("SELECT 1 FROM pg_stat_activity WHERE wait_event = 'SyncRep'")).length ===
      2,
    { timeoutMs: 30_000, what: 'both COMMITs waiting on synchronous replication' },
  );
  const [{ lsn }] = (await h.pair.primary.query<{ lsn: string }>(
    'SELECT pg_current_wal_lsn()::text AS lsn',
  )) as [{ lsn: string }];
  await waitFor(
    async () =>
      (await h.pair.standby.query('SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok', [lsn]))[0]?.ok ===
      true,
    { timeoutMs: 30_000, what: 'the standby replaying both commits' },
  );
  killAll(postgresProcesses(h.pair.primary.postmasterPid()));
  const s = await promote(h.pair.standby);
  h.topology.set(pairView(2, h.pair.standby, s));
  const [keyed, unkeyed] = await Promise.all([keyedCall, unkeyedCall]);
  const count = async (name: string) =>
    Number(
      (await h.pair.standby.query('SELECT count(*)::int AS n FROM items WHERE name = $1', [name]))[0]?.n,
    );
  assert.deepEqual(keyed, { ok: true });
  assert.deepEqual(unkeyed, { ok: true });
  assert.equal(await count('keyed-tx'), 1);
  assert.equal(await count('unkeyed-tx'), 1);
});
