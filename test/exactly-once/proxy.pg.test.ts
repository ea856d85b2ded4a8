// Keyed requests and the commit fence through the real proxy, against the shared
// PostgreSQL on 127.0.0.1:5432 (no failover here: see failover.pg.test.ts).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { type TestContext, test } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import { StaticTopology } from '../../src/cluster/view.ts';
import { exactlyOnceConfigSchema } from '../../src/exactly-once/config.ts';
import { installLedger } from '../../src/exactly-once/ledger.ts';
import { ExactlyOnceHooks } from '../../src/exactly-once/proxy-hooks.ts';
import { silentLogger } from '../../src/log.ts';
import {
  direct,
  PGBENCH,
  POSTGRES,
  PSQL,
  primaryView,
  psqlArgs,
  startProxy,
  tempDatabase,
} from '../support/proxy.ts';
import { waitFor } from '../support/wait.ts';

const run = promisify(execFile);

async function setup(t: TestContext, mode: 'off' | 'keyed' | 'all' = 'all') {
  const hooks = new ExactlyOnceHooks({
    config: exactlyOnceConfigSchema.parse({ mode }),
    topology: new StaticTopology(primaryView()),
    logger: silentLogger(),
  });
  const proxy = await startProxy(t, {}, { hooks });
  const database = await tempDatabase(t, 'pgward_eo');
  const admin = new pg.Client({ ...POSTGRES, user: 'postgres', database });
  admin.on('error', () => {});
  await admin.connect();
  t.after(() => admin.end().catch(() => {}));
  await installLedger(admin);
  await admin.query('CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL)');
  return { proxy, database, admin };
}

const count = async (admin: pg.Client, name: string) =>
  (await admin.query('SELECT count(*)::int AS n FROM items WHERE name = $1', [name])).rows[0].n as number;

test('a keyed autocommit statement runs once; a retry gets the stored outcome (simple protocol)', async (t) => {
  const { proxy, admin } = await setup(t);
  const client = await proxy.connect((await admin.query('SELECT current_database() AS d')).rows[0].d);
  const sql = "INSERT INTO items (name) VALUES ('a') RETURNING id /*pgward_key='order-1'*/";
  const first = await client.query(sql);
  const second = await client.query(sql);
  assert.equal(first.command, 'INSERT');
  assert.equal(first.rowCount, 1);
  assert.deepEqual(second.rows, first.rows);
  assert.equal(second.rowCount, 1);
  assert.equal(await count(admin, 'a'), 1);
  const ledger = await admin.query('SELECT scope, key, command_tag FROM pgward.request_ledger');
  assert.deepEqual(ledger.rows, [
    { scope: `postgres/${client.database}`, key: 'order-1', command_tag: 'INSERT 0 1' },
  ]);
});

test('the same key with a different request gets PW001 and nothing runs', async (t) => {
  const { proxy, database, admin } = await setup(t);
  const client = await proxy.connect(database);
  await client.query("INSERT INTO items (name) VALUES ('b') /*pgward_key='k'*/");
  await assert.rejects(client.query("INSERT INTO items (name) VALUES ('c') /*pgward_key='k'*/"), {
    code: 'PW001',
  });
  assert.equal(await count(admin, 'c'), 0);
  // The session goes on normally.
  assert.equal((await client.query('SELECT 1 AS one')).rows[0].one, 1);
});

test('extended protocol: parameters are part of the fingerprint; retries are answered from the ledger', async (t) => {
  const { proxy, database, admin } = await setup(t);
  const client = await proxy.connect(database);
  const text = "/*pgward_key='ext-1'*/ INSERT INTO items (name) VALUES ($1) RETURNING id, name";
  const first = await client.query(text, ['e']);
  const again = await client.query(text, ['e']);
  assert.deepEqual(again.rows, first.rows);
  await assert.rejects(client.query(text, ['other']), { code: 'PW001' });
  assert.equal(await count(admin, 'e'), 1);
  assert.equal(await count(admin, 'other'), 0);
});

test('keys are scoped by namespace from startup options', async (t) => {
  const { proxy, database, admin } = await setup(t);
  const a = new pg.Client({ ...proxy.clientConfig(database), options: '-c pgward.namespace=a' });
  const b = new pg.Client({ ...proxy.clientConfig(database), options: '-c pgward.namespace=b' });
  a.on('error', () => {});
  b.on('error', () => {});
  await a.connect();
  await b.connect();
  t.after(() => Promise.all([a.end().catch(() => {}), b.end().catch(() => {})]));
  await a.query("INSERT INTO items (name) VALUES ('ns') /*pgward_key='same'*/");
  await b.query("INSERT INTO items (name) VALUES ('ns') /*pgward_key='same'*/");
  assert.equal(await count(admin, 'ns'), 2);
});

test('a failing keyed statement leaves no key behind, so a retry runs', async (t) => {
  const { proxy, database, admin } = await setup(t);
  const client = await proxy.connect(database);
  await assert.rejects(client.query("INSERT INTO items (name) VALUES (NULL) /*pgward_key='f'*/"), {
    code: '23502',
  });
  assert.equal((await client.query('SELECT 1 AS one')).rows[0].one, 1);
  assert.equal((await admin.query('SELECT count(*)::int AS n FROM pgward.request_ledger')).rows[0].n, 0);
});

test('malformed keys and keys on unwrappable statements are refused with PW002/PW003', async (t) => {
  const { proxy, database } = await setup(t);
  const client = await proxy.connect(database);
  await assert.rejects(client.query("SELECT 1 /*pgward_key=''*/"), { code: 'PW002' });
  await assert.rejects(client.query("VACUUM items /*pgward_key='v'*/"), { code: 'PW003' });
  await assert.rejects(client.query("INSERT INTO items (name) VALUES ('x'); SELECT 1 /*pgward_key='m'*/"), {
    code: 'PW003',
  });
  await client.query('BEGIN');
  await assert.rejects(client.query("INSERT INTO items (name) VALUES ('x') /*pgward_key='t'*/"), {
    code: 'PW003',
  });
  await assert.rejects(client.query('SELECT 1'), { code: '25P02' });
  await client.query('ROLLBACK');
});

test('transaction keys, literal form (claim and statement in one Query): the statement answers as usual, PW004 on reuse', async (t) => {
  const { proxy, database, admin } = await setup(t);
  const client = await proxy.connect(database);
  const transfer = async () => {
    await client.query('BEGIN');
    try {
      const set = await client.query("SELECT set_config('pgward.idempotency_key', 'lit-1', true)");
      assert.deepEqual(set.rows, [{ set_config: 'lit-1' }]);
      await client.query("INSERT INTO items (name) VALUES ('lit')");
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK');
      throw error;
    }
  };
  await transfer();
  await assert.rejects(transfer(), { code: 'PW004' });
  assert.equal(await count(admin, 'lit'), 1);
});

test('transaction keys: set_config claims the key; a committed key is refused with PW004', async (t) => {
  const { proxy, database, admin } = await setup(t);
  const client = await proxy.connect(database);
  const transfer = async () => {
    await client.query('BEGIN');
    try {
      await client.query("SELECT set_config('pgward.idempotency_key', $1, true)", ['tx-1']);
      await client.query("INSERT INTO items (name) VALUES ('tx')");
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK');
      throw error;
    }
  };
  await transfer();
  await assert.rejects(transfer(), { code: 'PW004' });
  assert.equal(await count(admin, 'tx'), 1);
  await client.query('BEGIN');
  await client.query("SELECT set_config('pgward.idempotency_key', 'tx-2', true)");
  await client.query('ROLLBACK');
  assert.equal(
    (await admin.query("SELECT count(*)::int AS n FROM pgward.request_ledger WHERE key = 'tx-2'")).rows[0].n,
    0,
  );
});

test('a backend lost while set_config claims the key: 40001 (nothing committed), the session stays usable', async (t) => {
  const { proxy, database, admin } = await setup(t);
  const holder = await proxy.connect(database);
  const client = await proxy.connect(database);
  // The holder's uncommitted claim makes the client's claim wait on the ledger's unique index.
  await holder.query('BEGIN');
  await holder.query("SELECT set_config('pgward.idempotency_key', 'lost-1', true)");
  await client.query('BEGIN');
  const claim = client.query("SELECT set_config('pgward.idempotency_key', $1, true)", ['lost-1']);
  claim.catch(() => {});
  const waiting = await waitFor(
    async () =>
      (
        await admin.query<{ pid: number }>(
          "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
      ).rows[0]?.pid,
    { timeoutMs: 30_000, what: 'the claim waiting on the held key' },
  );
  await admin.query('SELECT pg_terminate_backend($1)', [waiting]);
  await assert.rejects(claim, { code: '40001' });
  await assert.rejects(client.query('SELECT 1'), { code: '25P02' });
  await client.query('ROLLBACK');
  await holder.query('ROLLBACK');
  // The retry with the same key runs once on the same connection.
  await client.query('BEGIN');
  await client.query("SELECT set_config('pgward.idempotency_key', $1, true)", ['lost-1']);
  await client.query("INSERT INTO items (name) VALUES ('lost')");
  await client.query('COMMIT');
  assert.equal(await count(admin, 'lost'), 1);
});

test('mode all: unkeyed writes, multi-statement text and explicit transactions behave as without the proxy', async (t) => {
  const { proxy, database, admin } = await setup(t);
  const client = await proxy.connect(database);
  const inserted = await client.query("INSERT INTO items (name) VALUES ('u1'), ('u2') RETURNING name");
  assert.deepEqual(
    inserted.rows.map((r) => r.name),
    ['u1', 'u2'],
  );
  assert.equal(inserted.command, 'INSERT');
  const multi = (await client.query(
    "INSERT INTO items (name) VALUES ('m'); UPDATE items SET name = 'm2' WHERE name = 'm'",
  )) as unknown as pg.QueryResult[];
  assert.deepEqual(
    multi.map((r) => r.command),
    ['INSERT', 'UPDATE'],
  );
  await assert.rejects(
    client.query("INSERT INTO items (name) VALUES ('z'); INSERT INTO items (name) VALUES (NULL)"),
    {
      code: '23502',
    },
  );
  assert.equal(await count(admin, 'z'), 0);
  await client.query('BEGIN');
  await client.query("INSERT INTO items (name) VALUES ('tx')");
  const commit = await client.query('COMMIT');
  assert.equal(commit.command, 'COMMIT');
  await client.query('BEGIN');
  await client.query("INSERT INTO items (name) VALUES ('rolled')");
  await client.query('ROLLBACK');
  assert.equal(await count(admin, 'tx'), 1);
  assert.equal(await count(admin, 'rolled'), 0);
  // Extended protocol autocommit write, and a read.
  await client.query('INSERT INTO items (name) VALUES ($1)', ['p']);
  assert.equal(
    (await client.query('SELECT count(*)::int AS n FROM items WHERE name = $1', ['p'])).rows[0].n,
    1,
  );
  // Statements that cannot be wrapped still work.
  await client.query('VACUUM items');
  // Nothing is left open on PostgreSQL.
  const open = await direct<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND state LIKE 'idle in transaction%'",
    [database],
  );
  assert.equal(open.rows[0]!.n, 0);
});

test('psql: keyed statement run twice applies once', async (t) => {
  const { proxy, database, admin } = await setup(t);
  const args = [...psqlArgs(proxy.port, database)];
  const sql = "INSERT INTO items (name) VALUES ('psql') /*pgward_key='psql-1'*/";
  const { stdout } = await run(PSQL, [...args, '-c', sql, '-c', sql]);
  assert.deepEqual(stdout.trim().split('\n'), ['INSERT 0 1', 'INSERT 0 1']);
  assert.equal(await count(admin, 'psql'), 1);
});

test('pgbench with a keyed custom script: every key applied exactly once', async (t) => {
  const { proxy, database, admin } = await setup(t);
  const { writeFile, mkdtemp, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const dir = await mkdtemp(`${tmpdir()}/pgward-eo-`);
  t.after(() => rm(dir, { recursive: true, force: true }));
  // Keys repeat (random 1..50 over 200 transactions): duplicates must be answered from the ledger.
  await writeFile(
    `${dir}/keyed.sql`,
    "\\set k random(1, 50)\nINSERT INTO items (name) VALUES ('bench-' || :k) /*pgward_key='bench-:k'*/;\n",
  );
  await run(PGBENCH, [
    '-h',
    '127.0.0.1',
    '-p',
    String(proxy.port),
    '-U',
    'postgres',
    '-n',
    '-c',
    '4',
    '-t',
    '50',
    '-f',
    `${dir}/keyed.sql`,
    database,
  ]);
  const rows = await admin.query(
    "SELECT name, count(*)::int AS n FROM items WHERE name LIKE 'bench-%' GROUP BY name",
  );
  assert.ok(rows.rows.length >= 20, `only ${rows.rows.length} distinct keys: pgbench did not substitute :k`);
  for (const row of rows.rows) assert.equal(row.n, 1, `${row.name} applied ${row.n} times`);
  const keys = await admin.query(
    "SELECT count(*)::int AS n FROM pgward.request_ledger WHERE key LIKE 'bench-%'",
  );
  assert.equal(keys.rows[0].n, rows.rows.length);
});
