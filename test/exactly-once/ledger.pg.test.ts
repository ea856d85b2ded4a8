// The ledger SQL against the real PostgreSQL on 127.0.0.1:5432, in a database
// this test creates and drops.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { collectLedgerGarbage } from '../../src/exactly-once/gc.ts';
import { installLedger, ledgerVersion, loadMigrations } from '../../src/exactly-once/ledger.ts';

const admin = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' };
const database = `pgward_ledger_test_${process.pid}`;
const clients: pg.Client[] = [];

async function connect(): Promise<pg.Client> {
  const client = new pg.Client({ ...admin, database });
  await client.connect();
  clients.push(client);
  return client;
}

before(async () => {
  const client = new pg.Client(admin);
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${database}`);
    await client.query(`CREATE DATABASE ${database}`);
  } finally {
    await client.end();
  }
});

after(async () => {
  await Promise.all(clients.map((c) => c.end().catch(() => {})));
  const client = new pg.Client(admin);
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  } finally {
    await client.end();
  }
});

test('installs once, then is a no-op; concurrent installers serialize', async () => {
  const [a, b] = [await connect(), await connect()];
  const results = await Promise.all([installLedger(a), installLedger(b)]);
  const applied = results.flatMap((r) => r.applied);
  assert.deepEqual(
    applied,
    loadMigrations().map((m) => m.version),
  );
  assert.deepEqual(await installLedger(a), { applied: [], version: loadMigrations().length });
  assert.equal(await ledgerVersion(a), loadMigrations().length);
});

test('refuses a ledger newer than this pgward knows', async () => {
  const client = await connect();
  await installLedger(client);
  await assert.rejects(installLedger(client, []), /upgrade pgward/);
});

test('claim, complete and lookup in one transaction; a committed key raises PW900', async () => {
  const client = await connect();
  await installLedger(client);
  await client.query('BEGIN');
  await client.query('SELECT pgward.claim($1, $2, $3)', ['app/db', 'k1', 'fp1']);
  await client.query('SELECT pgward.complete($1, $2, $3, $4, $5, false)', [
    'app/db',
    'k1',
    'INSERT 0 1',
    null,
    Buffer.from([1, 2, 3]),
  ]);
  await client.query('COMMIT');
  const { rows } = await client.query('SELECT * FROM pgward.lookup($1, $2)', ['app/db', 'k1']);
  assert.equal(rows.length, 1);
  assert.equal(rows[0].fingerprint, 'fp1');
  assert.equal(rows[0].command_tag, 'INSERT 0 1');
  assert.deepEqual(rows[0].data_rows, Buffer.from([1, 2, 3]));
  await client.query('BEGIN');
  await assert.rejects(client.query('SELECT pgward.claim($1, $2, $3)', ['app/db', 'k1', 'fp2']), {
    code: 'PW900',
  });
  await client.query('ROLLBACK');
  // Another scope is another key space.
  await client.query('BEGIN');
  await client.query('SELECT pgward.claim($1, $2, $3)', ['app/other', 'k1', 'fp2']);
  await client.query('ROLLBACK');
});

test('a concurrent claim waits for the first transaction and fails only if it committed', async () => {
  const [first, second] = [await connect(), await connect()];
  await installLedger(first);
  await first.query('BEGIN');
  await first.query('SELECT pgward.claim($1, $2, $3)', ['s', 'race', 'fp']);
  await second.query('BEGIN');
  const waiting = second.query('SELECT pgward.claim($1, $2, $3)', ['s', 'race', 'fp']);
  await first.query('ROLLBACK');
  await waiting; // the first rolled back: the second now owns the key
  const racing = (await connect()).query('SELECT pgward.claim($1, $2, $3)', ['s', 'race', 'fp']);
  await second.query('COMMIT');
  await assert.rejects(racing, { code: 'PW900' });
});

test('retention GC deletes old keys in batches and keeps young ones', async () => {
  const client = await connect();
  await installLedger(client);
  await client.query(
    `INSERT INTO pgward.request_ledger (scope, key, fingerprint, created_at)
     SELECT 'gc', 'old-' || i, 'fp', now() - interval '25 hours' FROM generate_series(1, 25) i`,
  );
  await client.query(
    `INSERT INTO pgward.request_ledger (scope, key, fingerprint) VALUES ('gc', 'young', 'fp')`,
  );
  const deleted = await collectLedgerGarbage(client, {
    retentionHours: 24,
    gcBatchSize: 10,
    gcIntervalMs: 1000,
  });
  assert.equal(deleted, 25);
  const { rows } = await client.query(`SELECT key FROM pgward.request_ledger WHERE scope = 'gc'`);
  assert.deepEqual(
    rows.map((r) => r.key),
    ['young'],
  );
  const bounded = await collectLedgerGarbage(client, {
    retentionHours: 0,
    gcBatchSize: 1,
    gcIntervalMs: 1000,
    maxBatchesPerRun: 1,
  });
  assert.equal(bounded, 1);
});
