// Term fencing and holding (issue 6 §4b, §5), driven with StaticTopology.set: a newer
// term closes backend connections of older terms; idle sessions move transparently
// (settings and prepared statements re-applied); a transaction open across the change
// gets 40001 and stays failed until ROLLBACK; while there is no primary new
// transactions are held, then released, or fail with 57P03 past the bound, or 57014
// when cancelled.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { buildCancelRequest } from '../../src/wire/startup.ts';
import { direct, noPrimaryView, primaryView, startProxy, tempDatabase } from '../support/proxy.ts';
import { waitFor } from '../support/wait.ts';

type PgError = Error & { code?: string };

test('an idle session moves to the new term with its settings and prepared statements', async (t) => {
  const proxy = await startProxy(t);
  const database = await tempDatabase(t);
  const client = await proxy.connect(database);
  await client.query("SET application_name = 'moving'");
  const before = await client.query({
    name: 'who',
    text: 'SELECT pg_backend_pid() AS pid, $1::int AS n',
    values: [1],
  });
  proxy.topology.set(primaryView(2));
  const after = await client.query({
    name: 'who',
    text: 'SELECT pg_backend_pid() AS pid, $1::int AS n',
    values: [2],
  });
  assert.notEqual(after.rows[0].pid, before.rows[0].pid, 'a new backend connection serves the new term');
  assert.equal(after.rows[0].n, 2);
  assert.equal((await client.query("SELECT current_setting('application_name') AS a")).rows[0].a, 'moving');
  const old = await direct('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [before.rows[0].pid]);
  assert.equal(old.rowCount, 0, 'the old-term backend connection is closed');
});

test('a transaction open across a term change gets 40001, then 25P02 until ROLLBACK', async (t) => {
  const proxy = await startProxy(t);
  const database = await tempDatabase(t);
  const client = await proxy.connect(database);
  await client.query('CREATE TABLE t (x int)');
  await client.query('BEGIN');
  await client.query('INSERT INTO t VALUES (1)');
  proxy.topology.set(primaryView(2));
  await assert.rejects(client.query('INSERT INTO t VALUES (2)'), (e: PgError) => e.code === '40001');
  await assert.rejects(client.query('SELECT 1'), (e: PgError) => e.code === '25P02');
  await client.query('ROLLBACK');
  assert.equal(
    (await client.query('SELECT count(*)::int AS n FROM t')).rows[0].n,
    0,
    'nothing was committed',
  );
});

test('an autocommit statement in flight at a term change gets 08007 and the connection closes', async (t) => {
  const proxy = await startProxy(t);
  const database = await tempDatabase(t);
  const client = await proxy.connect(database);
  const running = client.query('SELECT pg_sleep(5)');
  await waitFor(
    async () =>
      (
        await direct(
          "SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'SELECT pg_sleep(5)%' AND state = 'active'",
          [database],
        )
      ).rowCount === 1,
    { timeoutMs: 10_000, what: 'the statement running' },
  );
  proxy.topology.set(primaryView(2));
  await assert.rejects(running, (e: PgError) => e.code === '08007');
});

for (const poolMode of ['session', 'transaction'] as const) {
  test(`new transactions are held while there is no primary, then released (${poolMode} pooling)`, async (t) => {
    const proxy = await startProxy(t, { poolMode, holdTimeoutMs: 20_000 });
    const database = await tempDatabase(t);
    const client = await proxy.connect(database);
    await client.query('SELECT 1');
    proxy.topology.set(noPrimaryView(2));
    const held = client.query('SELECT 42 AS answer');
    await waitFor(() => proxy.server.stats().heldRequests === 1, {
      timeoutMs: 10_000,
      what: 'the request held',
    });
    proxy.topology.set(primaryView(3));
    assert.equal((await held).rows[0].answer, 42);
    assert.equal(proxy.server.stats().heldRequests, 0);
    assert.ok(proxy.server.stats().heldTotal >= 1);
  });
}

test('a held request fails with 57P03 past holdTimeoutMs and with 57014 when cancelled', async (t) => {
  const proxy = await startProxy(t, { holdTimeoutMs: 300 });
  const database = await tempDatabase(t);
  const client = await proxy.connect(database);
  const key = client as unknown as { processID: number; secretKey: number };
  proxy.topology.set(noPrimaryView(2));
  await assert.rejects(client.query('SELECT 1'), (e: PgError) => e.code === '57P03');

  const longHold = await startProxy(t, { holdTimeoutMs: 60_000 });
  const other = await longHold.connect(database);
  const otherKey = other as unknown as { processID: number; secretKey: number };
  longHold.topology.set(noPrimaryView(2));
  const held = assert.rejects(other.query('SELECT 1'), (e: PgError) => e.code === '57014');
  await waitFor(() => longHold.server.stats().heldRequests === 1, {
    timeoutMs: 10_000,
    what: 'the request held',
  });
  await new Promise<void>((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port: longHold.port }, () =>
      socket.end(buildCancelRequest(otherKey.processID, otherKey.secretKey)),
    );
    socket.on('close', () => resolve());
    socket.on('error', reject);
  });
  await held;

  // Both sessions go on once a primary is back.
  proxy.topology.set(primaryView(3));
  longHold.topology.set(primaryView(3));
  assert.equal((await client.query('SELECT 1 AS one')).rows[0].one, 1);
  assert.equal((await other.query('SELECT 1 AS one')).rows[0].one, 1);
  assert.ok(key.processID > 0);
});
