// The read-only port goes to a healthy backup within the lag bound; the write port goes to
// the primary only, and holds (then 57P03) while the primary does not accept connections.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import type { ClusterView } from '../../src/cluster/view.ts';
import { freePort } from '../support/ports.ts';
import { POSTGRES, startProxy, tempDatabase } from '../support/proxy.ts';

test('read-only port reaches the backup while the unreachable primary makes writes fail with 57P03', async (t) => {
  const deadPort = await freePort();
  const view: ClusterView = {
    term: 5,
    primary: 'a',
    promotedAtLsn: null,
    members: [
      {
        name: 'a',
        role: 'primary',
        postgres: { host: '127.0.0.1', port: deadPort },
        lsn: null,
        lagBytes: 0,
        healthy: true,
      },
      { name: 'b', role: 'backup', postgres: POSTGRES, lsn: null, lagBytes: 0, healthy: true },
    ],
  };
  const readOnlyPort = await freePort();
  const proxy = await startProxy(t, { readOnlyPort, holdTimeoutMs: 500 }, { view });
  assert.equal(proxy.server.addresses().read?.port, readOnlyPort);
  const database = await tempDatabase(t);
  const reader = new pg.Client({ host: '127.0.0.1', port: readOnlyPort, user: 'postgres', database });
  reader.on('error', () => {});
  await reader.connect();
  t.after(() => reader.end().catch(() => {}));
  assert.equal((await reader.query('SELECT 7 AS seven')).rows[0].seven, 7);

  const writer = new pg.Client({ ...proxy.clientConfig(database) });
  writer.on('error', () => {});
  await assert.rejects(writer.connect(), (e: Error & { code?: string }) => e.code === '57P03');
});
