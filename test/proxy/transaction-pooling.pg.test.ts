// Transaction pooling: a backend per transaction, released at ReadyForQuery 'I'; each
// client's SET parameters and named prepared statements follow it to whichever backend
// serves its next transaction.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startProxy, tempDatabase } from '../support/proxy.ts';

test('SET and named prepared statements survive across many transactions on shared backends', async (t) => {
  const proxy = await startProxy(t, { poolMode: 'transaction', poolSize: 2 });
  const database = await tempDatabase(t);
  const setup = await proxy.connect(database);
  await setup.query(
    'CREATE SCHEMA s1; CREATE SCHEMA s2; CREATE TABLE s1.t (v text); CREATE TABLE s2.t (v text)',
  );
  await setup.query("INSERT INTO s1.t VALUES ('one'); INSERT INTO s2.t VALUES ('two')");

  const clients = await Promise.all(
    [1, 2, 1, 2, 1, 2].map(async (schema, i) => {
      const client = await proxy.connect(database);
      await client.query(`SET search_path = s${schema}`);
      await client.query(`SET application_name = 'client-${i}'`);
      return { client, schema, i };
    }),
  );
  const backends = new Set<number>();
  await Promise.all(
    clients.map(async ({ client, schema, i }) => {
      for (let round = 0; round < 15; round++) {
        // Same statement name in every client, different text per schema: must never mix.
        const read = await client.query({
          name: 'read-v',
          text: 'SELECT v, current_setting($1) AS app, pg_backend_pid() AS pid FROM t',
          values: ['application_name'],
        });
        assert.equal(read.rows[0].v, schema === 1 ? 'one' : 'two');
        assert.equal(read.rows[0].app, `client-${i}`);
        backends.add(read.rows[0].pid);
        await client.query('BEGIN');
        await client.query('SET LOCAL statement_timeout = 5000');
        const inside = await client.query({
          name: `own-${i}`,
          text: 'SELECT $1::int * 2 AS doubled',
          values: [round],
        });
        assert.equal(inside.rows[0].doubled, round * 2);
        await client.query('COMMIT');
      }
    }),
  );
  assert.ok(backends.size <= 2, `at most poolSize backends served everyone, saw ${backends.size}`);
  const stats = proxy.server.stats();
  assert.ok(stats.backendsTotal <= 2);
});

test('a SET rolled back with its transaction is not replayed, a committed one is; RESET restores the startup value', async (t) => {
  const proxy = await startProxy(t, { poolMode: 'transaction', poolSize: 1 });
  const database = await tempDatabase(t);
  const client = await proxy.connect(database);
  await client.query("SET application_name = 'kept'");
  await client.query('BEGIN');
  await client.query("SET application_name = 'rolled-back'");
  await client.query('ROLLBACK');
  // Another client takes the only backend in between.
  const other = await proxy.connect(database);
  await other.query("SET application_name = 'other'");
  assert.equal((await client.query("SELECT current_setting('application_name') AS a")).rows[0].a, 'kept');
  await client.query('BEGIN');
  await client.query("SET application_name = 'committed'");
  await client.query('COMMIT');
  await other.query('SELECT 1');
  assert.equal(
    (await client.query("SELECT current_setting('application_name') AS a")).rows[0].a,
    'committed',
  );
  await client.query('RESET application_name');
  await other.query('SELECT 1');
  assert.equal((await client.query("SELECT current_setting('application_name') AS a")).rows[0].a, '');
});
