// A failover under idle sessions (reference/exactly-once.md §5.6): a session that
// holds state only its old backend process had (temp tables, session advisory
// locks, LISTEN, WITH HOLD cursors) gets FATAL 57P01 naming that state and its
// connection closes; a session without such state moves to the new primary
// unnoticed (SET parameters and prepared statements re-applied). The failover is
// real: the whole primary is killed, the standby promoted, the new view published.
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import pg from 'pg';
import { pairView, startPairProxy } from '../exactly-once/pair-proxy.ts';
import { killAll, type PgPair, postgresProcesses, promote, startPair } from '../exactly-once/pg-pair.ts';
import { waitFor } from '../support/wait.ts';

const TIMEOUT_MS = 120_000;

/** A client through the proxy that records the error it gets while idle (a FATAL the server sent unasked). */
interface Watched {
  client: pg.Client;
  idleError: () => (Error & { code?: string }) | null;
  ended: () => boolean;
}

interface Harness {
  pair: PgPair;
  connect(): Promise<Watched>;
  failover(): Promise<void>;
}

async function harness(t: TestContext, hooks: 'exactly-once' | 'none'): Promise<Harness> {
  const pair = await startPair(t);
  const { topology, port } = await startPairProxy(
    t,
    pair.primary,
    hooks === 'none' ? null : { resolveTimeoutMs: 60_000 },
  );
  const connect = async (): Promise<Watched> => {
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres' });
    let idleError: (Error & { code?: string }) | null = null;
    let ended = false;
    client.on('error', (error) => {
      idleError ??= error;
    });
    client.on('end', () => {
      ended = true;
    });
    await client.connect();
    t.after(() => client.end().catch(() => {}));
    return { client, idleError: () => idleError, ended: () => ended };
  };
  const failover = async () => {
    killAll(postgresProcesses(pair.primary.postmasterPid()));
    const s = await promote(pair.standby);
    await waitFor(async () => (await pair.standby.query('SELECT pg_is_in_recovery() AS r'))[0]?.r === false, {
      timeoutMs: TIMEOUT_MS,
      what: 'the standby promoted',
    });
    topology.set(pairView(2, pair.standby, s));
  };
  return { pair, connect, failover };
}

async function expectPinnedFatal(session: Watched, state: RegExp, label: string): Promise<void> {
  await waitFor(async () => session.ended(), { timeoutMs: TIMEOUT_MS, what: `${label}: connection closed` });
  const error = session.idleError();
  assert.ok(error !== null, `${label}: no error before the close`);
  assert.equal(error.code, '57P01', `${label}: ${error.message}`);
  assert.match(error.message, state, label);
  assert.match(error.message, /reconnect/, label);
}

/** An unpinned session: still open, on the new primary, its SET and prepared statement still there. */
async function expectMoved(session: Watched, newPrimaryPort: number, label: string): Promise<void> {
  const rows = (
    await session.client.query(
      "SELECT inet_server_port() AS port, current_setting('application_name') AS app, pg_is_in_recovery() AS standby",
    )
  ).rows;
  assert.deepEqual(rows[0], { port: newPrimaryPort, app: 'mover', standby: false }, label);
  const prepared = await session.client.query({
    name: 'plus',
    text: 'SELECT $1::int + 1 AS v',
    values: [41],
  });
  assert.equal(prepared.rows[0]?.v, 42, label);
  assert.equal(session.idleError(), null, `${label}: ${session.idleError()?.message}`);
  assert.equal(session.ended(), false, label);
}

/** The pre-failover part of an unpinned session: a SET and a named prepared statement. */
async function mover(h: Harness): Promise<Watched> {
  const session = await h.connect();
  await session.client.query("SET application_name = 'mover'");
  await session.client.query({ name: 'plus', text: 'SELECT $1::int + 1 AS v', values: [1] });
  return session;
}

test('failover under idle sessions (exactly-once on): pinned ones get FATAL 57P01 naming the state, the rest move', {
  timeout: 300_000,
}, async (t) => {
  const h = await harness(t, 'exactly-once');
  const temp = await h.connect();
  await temp.client.query('CREATE TEMP TABLE scratch (a int); INSERT INTO scratch VALUES (1)');
  const lock = await h.connect();
  // Extended protocol, a named statement: the pin comes from the Parse.
  await lock.client.query({ name: 'lock', text: 'SELECT pg_advisory_lock($1)', values: [7] });
  const listen = await h.connect();
  await listen.client.query('/* keep: */ LISTEN "Orders"');
  const cursor = await h.connect();
  await cursor.client.query('BEGIN; DECLARE c CURSOR WITH HOLD FOR SELECT 1; COMMIT');
  const openTransaction = await h.connect();
  await openTransaction.client.query('BEGIN');
  await openTransaction.client.query('CREATE TEMPORARY TABLE t (a int)');

  const plain = await mover(h);
  const released = await mover(h);
  await released.client.query('LISTEN a; CREATE TEMP TABLE x (a int)');
  await released.client.query('DISCARD ALL');
  await released.client.query("SET application_name = 'mover'");
  const unlistened = await mover(h);
  await unlistened.client.query('LISTEN a');
  await unlistened.client.query('UNLISTEN *');
  const rolledBack = await mover(h);
  await rolledBack.client.query('LISTEN a');
  await rolledBack.client.query('BEGIN; UNLISTEN *; ROLLBACK');
  const xactLock = await mover(h);
  await xactLock.client.query('BEGIN; SELECT pg_advisory_xact_lock(1); COMMIT');
  await xactLock.client.query("SELECT 'LISTEN x' AS text /* CREATE TEMP TABLE y () */");

  await h.failover();

  await expectPinnedFatal(temp, /temporary tables/, 'temp table');
  await expectPinnedFatal(lock, /session advisory locks/, 'advisory lock');
  await expectPinnedFatal(listen, /LISTEN registrations/, 'LISTEN');
  await expectPinnedFatal(cursor, /WITH HOLD cursors/, 'WITH HOLD cursor');
  await expectPinnedFatal(openTransaction, /temporary tables/, 'temp table in an open transaction');
  await expectPinnedFatal(rolledBack, /LISTEN registrations/, 'UNLISTEN rolled back');
  const port = h.pair.standby.port;
  await expectMoved(plain, port, 'plain session');
  await expectMoved(released, port, 'released by DISCARD ALL');
  await expectMoved(unlistened, port, 'released by UNLISTEN *');
  await expectMoved(xactLock, port, 'transaction-level lock, words in strings and comments');
});

test('failover under idle sessions (exactly-once off): the proxy alone ends a pinned session, moves the other', {
  timeout: 300_000,
}, async (t) => {
  const h = await harness(t, 'none');
  const temp = await h.connect();
  await temp.client.query('select 1; create temp table scratch (a int)');
  const plain = await mover(h);
  await h.failover();
  await expectPinnedFatal(temp, /temporary tables/, 'temp table');
  await expectMoved(plain, h.pair.standby.port, 'plain session');
});
