// PostgreSQL going away under idle sessions (issue 6 §5): a lone kill -9 of the
// postmaster makes its idle backends send FATAL 57P01 "terminating connection due to
// unexpected postmaster exit". The proxy treats that as losing the backend: the client
// never sees it, and its next request moves to the (new) primary, held until there is one.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startPrivatePostgres } from '../support/private-postgres.ts';
import { POSTGRES, primaryView, startProxy } from '../support/proxy.ts';
import { waitFor } from '../support/wait.ts';

test('an idle client never sees a dying server FATAL; its next request runs on the new primary', async (t) => {
  const doomed = await startPrivatePostgres(t);
  const proxy = await startProxy(t, { holdTimeoutMs: 60_000 }, { view: primaryView(1, doomed) });
  const client = await proxy.connect('postgres');
  const clientErrors: string[] = [];
  client.on('error', (error) => clientErrors.push(error.message));
  const notices: string[] = [];
  client.on('notice', (notice) => notices.push(notice.message ?? ''));
  const before = await client.query('SELECT inet_server_port() AS port');
  assert.equal(before.rows[0].port, doomed.port);

  doomed.killPostmaster();
  await waitFor(() => proxy.server.stats().backendsLost >= 1, {
    timeoutMs: 30_000,
    what: 'the proxy to lose its backend on the killed server',
  });
  // Held: the dead server refuses connections and the view still names it.
  const held = client.query('SELECT inet_server_port() AS port, 7 AS n');
  await waitFor(() => proxy.server.stats().heldRequests === 1, {
    timeoutMs: 30_000,
    what: 'the request held',
  });
  proxy.topology.set(primaryView(2, POSTGRES));
  const after = await held;
  assert.equal(after.rows[0].n, 7);
  assert.equal(after.rows[0].port, POSTGRES.port);
  assert.deepEqual(clientErrors, [], 'the client saw no error');
  assert.deepEqual(notices, []);
  assert.equal((await client.query('SELECT 1 AS one')).rows[0].one, 1);
});
