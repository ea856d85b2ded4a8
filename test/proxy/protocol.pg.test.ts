// Real clients through the proxy in session pooling: psql, node-postgres with
// parameters and named prepared statements, errors and notices verbatim, LISTEN/NOTIFY.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { PSQL, psqlArgs, startProxy, tempDatabase } from '../support/proxy.ts';
import { tempDir } from '../support/tmp.ts';
import { waitFor } from '../support/wait.ts';

const run = promisify(execFile);

test('psql runs queries through the proxy and sees PostgreSQL parameter status', async (t) => {
  const proxy = await startProxy(t);
  const database = await tempDatabase(t);
  const { stdout } = await run(PSQL, [
    ...psqlArgs(proxy.port, database),
    '-c',
    'CREATE TABLE t (id int PRIMARY KEY, v text)',
    '-c',
    "INSERT INTO t VALUES (1, 'a'), (2, 'b')",
    '-c',
    "SELECT string_agg(v, ',' ORDER BY id) FROM t",
    '-c',
    'SHOW server_version',
  ]);
  const lines = stdout.trim().split('\n');
  assert.equal(lines.at(-2), 'a,b');
  assert.match(lines.at(-1)!, /^15\./);
});

test('node-postgres: parameters, named prepared statements, errors verbatim, notices', async (t) => {
  const proxy = await startProxy(t);
  const database = await tempDatabase(t);
  const client = await proxy.connect(database);
  await client.query('CREATE TABLE items (id int PRIMARY KEY, name text)');
  for (let i = 0; i < 20; i++) {
    await client.query({
      name: 'insert-item',
      text: 'INSERT INTO items VALUES ($1, $2)',
      values: [i, `n${i}`],
    });
  }
  const named = await client.query({
    name: 'get-item',
    text: 'SELECT name FROM items WHERE id = $1',
    values: [7],
  });
  assert.equal(named.rows[0].name, 'n7');
  const params = await client.query('SELECT $1::int + $2::int AS sum, $3::text AS t', [40, 2, null]);
  assert.deepEqual(params.rows[0], { sum: 42, t: null });
  await assert.rejects(
    client.query('INSERT INTO items VALUES (1, $1)', ['dup']),
    (error: Error & { code?: string; constraint?: string }) => {
      assert.equal(error.code, '23505');
      assert.equal(error.constraint, 'items_pkey');
      return true;
    },
  );
  const notices: string[] = [];
  client.on('notice', (n) => notices.push(n.message ?? ''));
  await client.query("DO $$ BEGIN RAISE NOTICE 'hello from plpgsql'; END $$");
  assert.deepEqual(notices, ['hello from plpgsql']);
  const count = await client.query('SELECT count(*)::int AS n FROM items');
  assert.equal(count.rows[0].n, 20);
});

test('LISTEN/NOTIFY reach the listening client (session pooling)', async (t) => {
  const proxy = await startProxy(t);
  const database = await tempDatabase(t);
  const listener = await proxy.connect(database);
  const notifier = await proxy.connect(database);
  const received: string[] = [];
  listener.on('notification', (n) => received.push(`${n.channel}:${n.payload ?? ''}`));
  await listener.query('LISTEN pgward_events');
  await notifier.query("NOTIFY pgward_events, 'one'");
  await notifier.query("SELECT pg_notify('pgward_events', 'two')");
  await waitFor(() => received.length === 2, { timeoutMs: 10_000, what: 'two notifications' });
  assert.deepEqual(received, ['pgward_events:one', 'pgward_events:two']);
});

test('session pooling resets a backend (DISCARD ALL) before the next client gets it', async (t) => {
  const proxy = await startProxy(t, { poolSize: 1 });
  const database = await tempDatabase(t);
  const first = await proxy.connect(database);
  await first.query("SET application_name = 'first-client'");
  await first.query('PREPARE leftover AS SELECT 1');
  const pid = (await first.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
  await first.end();
  const second = await proxy.connect(database);
  const row = (
    await second.query("SELECT pg_backend_pid() AS pid, current_setting('application_name') AS app")
  ).rows[0];
  assert.equal(row.pid, pid, 'the pooled backend is reused');
  assert.notEqual(row.app, 'first-client');
  const prepared = await second.query('SELECT count(*)::int AS n FROM pg_prepared_statements');
  assert.equal(prepared.rows[0].n, 0);
});

test('FunctionCall messages (libpq large objects: psql \\lo_import / \\lo_export) pass through', async (t) => {
  const proxy = await startProxy(t);
  const database = await tempDatabase(t);
  const dir = tempDir(t, 'pgward-lo-');
  const source = path.join(dir, 'in.bin');
  const target = path.join(dir, 'out.bin');
  const content = Buffer.from(Array.from({ length: 70000 }, (_, i) => i % 251));
  writeFileSync(source, content);
  const psql = (...args: string[]) => run(PSQL, [...psqlArgs(proxy.port, database), ...args]);
  const imported = await psql('-c', `\\lo_import ${source}`);
  const oid = /lo_import (\d+)/.exec(imported.stdout)?.[1];
  assert.ok(oid !== undefined, imported.stdout);
  await psql('-c', `\\lo_export ${oid} ${target}`);
  assert.deepEqual(readFileSync(target), content);
});
