// Regression (switchover, issue 6 §6): with session pooling a client keeps its backend
// between transactions, and its next transaction went straight to the old primary
// while a switchover held writes. It must wait at the boundary like a client without a
// backend, count as idle for the drain, and go on over the new term's backend.
import assert from 'node:assert/strict';
import type { Duplex } from 'node:stream';
import { test } from 'node:test';
import type { Endpoint } from '../../src/cluster/view.ts';
import type { BackendConnector } from '../../src/proxy/backend.ts';
import { FrameKind, MessageFramer } from '../../src/wire/framer.ts';
import { buildQuery } from '../../src/wire/frontend.ts';
import { buildStartupMessage } from '../../src/wire/startup.ts';
import { primaryView } from '../support/proxy.ts';
import { fakePostgresConnector, inProcessProxy } from '../support/proxy-in-process.ts';
import { waitFor } from '../support/wait.ts';

function readyCount(client: Duplex): () => number {
  const framer = new MessageFramer({ maxMessageBytes: 1 << 20 });
  let ready = 0;
  client.on('data', (chunk: Buffer) => {
    framer.push(chunk);
    for (let f = framer.next(); f !== null; f = framer.next()) {
      if (f.kind === FrameKind.Message && f.type === 0x5a) ready += 1;
    }
  });
  return () => ready;
}

function countingConnector(): { connector: BackendConnector; endpoints: Endpoint[] } {
  const fake = fakePostgresConnector();
  const endpoints: Endpoint[] = [];
  return {
    endpoints,
    connector: (endpoint) => {
      endpoints.push(endpoint);
      return fake(endpoint);
    },
  };
}

const OLD: Endpoint = { host: '127.0.0.1', port: 5001 };
const NEW: Endpoint = { host: '127.0.0.1', port: 5002 };

test('session pooling: a transaction held at the boundary during a switchover runs on the new primary', async (t) => {
  const { connector, endpoints } = countingConnector();
  const proxy = await inProcessProxy(t, {
    connector,
    config: { poolMode: 'session' },
    view: primaryView(1, OLD),
  });
  const client = proxy.connectClient();
  const ready = readyCount(client);
  client.write(buildStartupMessage({ user: 'app', database: 'app' }));
  client.write(buildQuery('INSERT 1'));
  await waitFor(() => ready() === 2, { timeoutMs: 5000, what: 'login and a first query' });
  assert.deepEqual(endpoints, [OLD]);

  // The switchover intent: same term, no writable primary.
  proxy.topology.set({ ...primaryView(1, OLD), primary: null });
  assert.equal(proxy.server.writesInFlight(), 0, 'an idle session is nothing to drain');
  client.write(buildQuery('INSERT 2'));
  await waitFor(() => proxy.server.stats().heldRequests === 1, { timeoutMs: 5000, what: 'the request held' });
  assert.equal(ready(), 2, 'nothing reached the old primary');
  assert.equal(proxy.server.writesInFlight(), 0, 'a held session is nothing to drain');

  // The target promoted in a newer term.
  proxy.topology.set(primaryView(2, NEW));
  await waitFor(() => ready() === 3, { timeoutMs: 5000, what: 'the held query answered' });
  assert.deepEqual(endpoints, [OLD, NEW]);
  assert.equal(proxy.server.stats().holdExpiredTotal, 0);
});

test('session pooling: an aborted switchover releases the held transaction onto the same backend', async (t) => {
  const { connector, endpoints } = countingConnector();
  const proxy = await inProcessProxy(t, {
    connector,
    config: { poolMode: 'session' },
    view: primaryView(1, OLD),
  });
  const client = proxy.connectClient();
  const ready = readyCount(client);
  client.write(buildStartupMessage({ user: 'app', database: 'app' }));
  await waitFor(() => ready() === 1, { timeoutMs: 5000, what: 'login' });
  proxy.topology.set({ ...primaryView(1, OLD), primary: null });
  client.write(buildQuery('INSERT 1'));
  await waitFor(() => proxy.server.stats().heldRequests === 1, { timeoutMs: 5000, what: 'the request held' });
  proxy.topology.set(primaryView(1, OLD));
  await waitFor(() => ready() === 2, { timeoutMs: 5000, what: 'the held query answered' });
  assert.deepEqual(endpoints, [OLD], 'the same backend went on');
});
