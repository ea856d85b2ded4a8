// The session layer in process against a fake PostgreSQL: startup, simple and extended
// queries, split and merged chunks, and bad input, with no sockets at all.
import assert from 'node:assert/strict';
import type { Duplex } from 'node:stream';
import { test } from 'node:test';
import { decodeErrorResponse } from '../../src/wire/backend.ts';
import { FrameKind, MessageFramer } from '../../src/wire/framer.ts';
import {
  buildBind,
  buildCopyData,
  buildExecute,
  buildParse,
  buildQuery,
  SYNC,
} from '../../src/wire/frontend.ts';
import { buildCancelRequest, buildStartupMessage } from '../../src/wire/startup.ts';
import { fakePostgresConnector, inProcessProxy } from '../support/proxy-in-process.ts';
import { waitFor } from '../support/wait.ts';

function reader(client: Duplex): { types: string[]; closed: () => boolean; errors: () => string[] } {
  const framer = new MessageFramer({ maxMessageBytes: 1 << 20 });
  const types: string[] = [];
  const errors: string[] = [];
  let closed = false;
  client.on('data', (chunk: Buffer) => {
    framer.push(chunk);
    for (let f = framer.next(); f !== null; f = framer.next()) {
      if (f.kind !== FrameKind.Message) continue;
      types.push(String.fromCharCode(f.type));
      if (f.type === 0x45) errors.push(decodeErrorResponse(f).code);
    }
  });
  client.on('close', () => {
    closed = true;
  });
  client.on('end', () => {
    closed = true;
  });
  return { types, closed: () => closed, errors: () => errors };
}

test('startup, a simple query and a pipelined extended batch, fed one byte at a time', async (t) => {
  const proxy = await inProcessProxy(t, { connector: fakePostgresConnector() });
  const client = proxy.connectClient();
  const seen = reader(client);
  const bytes = Buffer.concat([
    buildStartupMessage({ user: 'app', database: 'app' }),
    buildQuery('SELECT 1'),
    buildParse({ statement: 's1', sql: 'SELECT $1', paramTypes: [] }),
    buildBind({
      portal: '',
      statement: 's1',
      paramFormats: [],
      params: [Buffer.from('1')],
      resultFormats: [],
    }),
    buildExecute(),
    SYNC,
  ]);
  for (const byte of bytes) client.write(Buffer.from([byte]));
  await waitFor(() => seen.types.filter((x) => x === 'Z').length === 3, {
    timeoutMs: 10_000,
    what: 'three ReadyForQuery',
  });
  assert.deepEqual(seen.types.slice(0, 2), ['R', 'S']);
  assert.ok(seen.types.includes('K'));
  assert.deepEqual(seen.types.slice(-6), ['C', 'Z', '1', '2', 'C', 'Z']);
  client.end();
});

test('an unknown message type closes only that session, with 08P01', async (t) => {
  const proxy = await inProcessProxy(t, { connector: fakePostgresConnector() });
  const bad = proxy.connectClient();
  const good = proxy.connectClient();
  const badSeen = reader(bad);
  const goodSeen = reader(good);
  bad.write(Buffer.concat([buildStartupMessage({ user: 'app' }), Buffer.from([0x01, 0, 0, 0, 4])]));
  good.write(buildStartupMessage({ user: 'app' }));
  await waitFor(() => badSeen.closed(), { timeoutMs: 10_000, what: 'the bad session closed' });
  assert.deepEqual(badSeen.errors(), ['08P01']);
  good.write(buildQuery('SELECT 1'));
  await waitFor(() => goodSeen.types.filter((x) => x === 'Z').length === 2, {
    timeoutMs: 10_000,
    what: 'the good session answered',
  });
  assert.equal(goodSeen.closed(), false);
});

test('a CancelRequest connection unregisters its session once it closes', async (t) => {
  const proxy = await inProcessProxy(t, { connector: fakePostgresConnector() });
  for (let i = 0; i < 3; i++) {
    const client = proxy.connectClient();
    const seen = reader(client);
    client.write(buildCancelRequest(12345, 678));
    await waitFor(() => seen.closed(), { timeoutMs: 10_000, what: 'the cancel connection closed' });
  }
  await waitFor(() => proxy.server.stats().clients === 0, {
    timeoutMs: 10_000,
    what: 'no sessions left registered after three CancelRequests',
  });
});

test('a backend left in the middle of a streamed message is closed, not pooled for the next client', async (t) => {
  const proxy = await inProcessProxy(t, {
    connector: fakePostgresConnector(),
    config: { poolMode: 'transaction', poolSize: 1 },
  });
  const first = proxy.connectClient();
  const firstSeen = reader(first);
  first.write(buildStartupMessage({ user: 'app', database: 'app' }));
  await waitFor(() => firstSeen.types.includes('Z'), { timeoutMs: 10_000, what: 'the first login' });
  // A CopyData big enough to be streamed; only its first part is sent before the client vanishes.
  const copyData = buildCopyData(Buffer.alloc(512 * 1024, 0x61));
  first.write(copyData.subarray(0, 300 * 1024));
  await waitFor(() => proxy.server.stats().backendsIdle === 0, {
    timeoutMs: 10_000,
    what: 'the streamed message holding the only backend',
  });
  first.destroy();
  await waitFor(() => proxy.server.stats().clients === 0, {
    timeoutMs: 10_000,
    what: 'the first session gone',
  });

  const second = proxy.connectClient();
  const secondSeen = reader(second);
  second.write(
    Buffer.concat([buildStartupMessage({ user: 'app', database: 'app' }), buildQuery('SELECT 1')]),
  );
  await waitFor(() => secondSeen.types.filter((x) => x === 'Z').length === 2, {
    timeoutMs: 10_000,
    what: "the next client's query answered on a clean backend",
  });
  assert.deepEqual(secondSeen.errors(), []);
  second.end();
});
