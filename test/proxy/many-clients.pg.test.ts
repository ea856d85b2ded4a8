// 5000 concurrent idle clients on a handful of backend connections (transaction
// pooling), all still served afterwards; past max_client_conn a client gets 53300.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildQuery } from '../../src/wire/frontend.ts';
import { startProxy, tempDatabase } from '../support/proxy.ts';
import { RawClient } from '../support/raw-client.ts';

const CLIENTS = 5000;
const CONCURRENT_LOGINS = 250;

test(`${CLIENTS} concurrent idle clients share ${2} backends; one more gets 53300`, async (t) => {
  const proxy = await startProxy(t, { poolMode: 'transaction', poolSize: 2, maxClientConn: CLIENTS });
  const database = await tempDatabase(t);
  const clients: RawClient[] = [];
  t.after(() => {
    for (const client of clients) client.close();
  });
  for (let i = 0; i < CLIENTS; i += CONCURRENT_LOGINS) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(CONCURRENT_LOGINS, CLIENTS - i) }, async () => {
        const client = await RawClient.connect(proxy.port);
        clients.push(client);
        await client.startup('postgres', database);
        return client;
      }),
    );
    for (const client of batch) assert.equal(client.messages.at(-1)?.type, 'Z');
  }
  const stats = proxy.server.stats();
  assert.equal(stats.clients, CLIENTS);
  assert.ok(stats.backendsTotal <= 2, `backends: ${stats.backendsTotal}`);

  const refused = await RawClient.connect(proxy.port);
  t.after(() => refused.close());
  const error = await refused.closedWithError();
  assert.equal(error?.code, '53300');

  // Every 50th client still gets answers.
  const sample = clients.filter((_, i) => i % 50 === 0);
  await Promise.all(
    sample.map(async (client) => {
      const before = client.messages.length;
      client.write(buildQuery('SELECT 1'));
      await client.until(() => client.messages.slice(before).some((m) => m.type === 'Z'), 30_000);
    }),
  );
});
