// Bad input gets a FATAL ErrorResponse with the right SQLSTATE and a closed connection,
// while every other session goes on; a client that vanishes leaves nothing open on
// PostgreSQL (regression guard for proxies that pooled dirty backends).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildQuery } from '../../src/wire/frontend.ts';
import { buildSSLRequest, buildStartupMessage } from '../../src/wire/startup.ts';
import { direct, startProxy, tempDatabase } from '../support/proxy.ts';
import { RawClient } from '../support/raw-client.ts';
import { waitFor } from '../support/wait.ts';

function packet(length: number, code: number, fill = 0): Buffer {
  const bytes = Buffer.alloc(Math.max(length, 8), fill);
  bytes.writeInt32BE(length, 0);
  bytes.writeInt32BE(code, 4);
  return bytes;
}

test('malformed startup, unknown messages and silent clients get FATAL and a close; others go on', async (t) => {
  const proxy = await startProxy(t, { loginTimeoutMs: 500 });
  const database = await tempDatabase(t);
  const bystander = await proxy.connect(database);
  await bystander.query('SELECT 1');

  const cases: { name: string; send: (c: RawClient) => void | Promise<void>; code: string }[] = [
    { name: 'startup packet over 10000 bytes', send: (c) => c.write(packet(10001, 196608)), code: '08P01' },
    { name: 'length under 8', send: (c) => c.write(Buffer.from([0, 0, 0, 3, 0, 0, 0, 0])), code: '08P01' },
    { name: 'unknown protocol version', send: (c) => c.write(packet(8, 2 << 16)), code: '08P01' },
    { name: 'protocol 4.0', send: (c) => c.write(packet(8, 4 << 16)), code: '08P01' },
    {
      name: 'bytes pipelined behind SSLRequest',
      send: (c) => c.write(Buffer.concat([buildSSLRequest(), buildStartupMessage({ user: 'postgres' })])),
      code: '08P01',
    },
    {
      name: 'no user in the startup packet',
      send: (c) => c.write(buildStartupMessage({ database })),
      code: '28000',
    },
    { name: 'silent past the login timeout', send: () => {}, code: '08P01' },
    {
      name: 'unknown message type after login',
      send: async (c) => {
        await c.startup('postgres', database);
        c.write(Buffer.from([0x7a, 0, 0, 0, 4]));
      },
      code: '08P01',
    },
    {
      name: 'message length under 4 after login',
      send: async (c) => {
        await c.startup('postgres', database);
        c.write(Buffer.from([0x51, 0, 0, 0, 2]));
      },
      code: '08P01',
    },
    {
      name: 'half a startup packet, then silence',
      send: (c) => c.write(buildStartupMessage({ user: 'postgres', database }).subarray(0, 10)),
      code: '08P01',
    },
  ];
  for (const c of cases) {
    const client = await RawClient.connect(proxy.port);
    t.after(() => client.close());
    await c.send(client);
    const error = await client.closedWithError();
    assert.equal(error?.code, c.code, `${c.name}: ${JSON.stringify(error)}`);
    assert.equal(error?.severity, 'FATAL', c.name);
  }
  assert.equal((await bystander.query('SELECT 2 AS two')).rows[0].two, 2);
  assert.ok(proxy.server.stats().protocolErrors >= 8);
});

test('a client that vanishes mid-transaction or mid-query leaves nothing open on PostgreSQL', async (t) => {
  const proxy = await startProxy(t, { poolSize: 2 });
  const database = await tempDatabase(t);
  const idleInTransaction = await RawClient.connect(proxy.port);
  await idleInTransaction.startup('postgres', database);
  idleInTransaction.write(buildQuery('BEGIN; CREATE TABLE vanished (x int)'));
  await idleInTransaction.until(
    () => idleInTransaction.messages.filter((m) => m.type === 'Z').length === 2,
    10_000,
  );
  const running = await RawClient.connect(proxy.port);
  await running.startup('postgres', database);
  running.write(buildQuery('BEGIN; SELECT pg_sleep(30)'));
  await waitFor(
    async () =>
      (
        await direct(
          "SELECT 1 FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' AND state = 'active' AND datname = $1",
          [database],
        )
      ).rowCount === 1,
    { timeoutMs: 10_000, what: 'pg_sleep running' },
  );
  idleInTransaction.close();
  running.close();
  await waitFor(
    async () =>
      (
        await direct(
          "SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND (state LIKE 'idle in transaction%' OR state = 'active')",
          [database],
        )
      ).rowCount === 0,
    { timeoutMs: 15_000, what: 'no open transaction or running query left' },
  );
  const table = await direct("SELECT to_regclass('vanished') AS t", [], database);
  assert.equal(table.rows[0]?.t, null, 'the vanished transaction was rolled back');
});
