// CancelRequest through the proxy: the client gets the proxy's own BackendKeyData; the
// proxy maps it to the backend serving that client and PostgreSQL really stops the query
// (regression guard for proxies that forwarded the client's key unmapped).
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import type pg from 'pg';
import { buildCancelRequest } from '../../src/wire/startup.ts';
import { direct, startProxy, tempDatabase } from '../support/proxy.ts';
import { waitFor } from '../support/wait.ts';

function sendCancel(port: number, processId: number, secretKey: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () =>
      socket.end(buildCancelRequest(processId, secretKey)),
    );
    socket.on('close', () => resolve());
    socket.on('error', reject);
  });
}

function keyOf(client: pg.Client): { processId: number; secretKey: number } {
  const keyed = client as unknown as { processID: number; secretKey: number };
  return { processId: keyed.processID, secretKey: keyed.secretKey };
}

const sleeping =
  "SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND state = 'active' AND query LIKE 'SELECT pg_sleep(30)%'";

for (const poolMode of ['session', 'transaction'] as const) {
  test(`cancel of pg_sleep(30) stops it on PostgreSQL (${poolMode} pooling)`, async (t) => {
    const proxy = await startProxy(t, { poolMode });
    const database = await tempDatabase(t);
    const client = await proxy.connect(database);
    const key = keyOf(client);
    const realPid = (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    assert.notEqual(key.processId, realPid, 'the client holds the proxy key, not PostgreSQL');
    const query = client.query('SELECT pg_sleep(30)');
    await waitFor(async () => (await direct(sleeping, [database])).rowCount === 1, {
      timeoutMs: 10_000,
      what: 'pg_sleep running',
    });
    // A wrong secret is ignored.
    await sendCancel(proxy.port, key.processId, key.secretKey ^ 1);
    await sendCancel(proxy.port, key.processId, key.secretKey);
    await assert.rejects(query, (error: Error & { code?: string }) => error.code === '57014');
    assert.equal((await direct(sleeping, [database])).rowCount, 0, 'the backend query really stopped');
    assert.equal((await client.query('SELECT 1 AS one')).rows[0].one, 1, 'the session goes on');
    assert.equal(proxy.server.stats().cancelsForwarded, 1);
  });
}
