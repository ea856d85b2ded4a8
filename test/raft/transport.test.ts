import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { silentLogger } from '../../src/log.ts';
import { encodeFrame } from '../../src/raft/transport/frame.ts';
import { type PeerAddress, TcpTransport, type TcpTransportOptions } from '../../src/raft/transport/tcp.ts';
import { waitFor } from '../support/wait.ts';

const SECRET = 'a-cluster-secret-of-some-length';
const logger = silentLogger();
const timeoutMs = 10_000;

interface Node {
  transport: TcpTransport;
  received: Array<[string, string]>;
}

async function node(
  t: { after(fn: () => Promise<void>): void },
  self: string,
  peers: Record<string, PeerAddress>,
  extra: Partial<TcpTransportOptions> = {},
): Promise<Node> {
  const received: Array<[string, string]> = [];
  const transport = new TcpTransport({
    self,
    clusterId: 'test',
    secret: SECRET,
    listen: { host: '127.0.0.1', port: 0 },
    peers: new Map(Object.entries(peers)),
    logger,
    random: () => 0.5,
    onMessage: (from, payload) => received.push([from, Buffer.from(payload).toString()]),
    reconnectInitialMs: 10,
    reconnectMaxMs: 50,
    ...extra,
  });
  await transport.start();
  t.after(() => transport.stop());
  return { transport, received };
}

const nowhere: PeerAddress = { host: '127.0.0.1', port: 1 };

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Opens a raw connection to `target`, writes `bytes`, resolves when the node closes it. */
async function sendRaw(target: PeerAddress, bytes: Buffer): Promise<void> {
  const socket = net.connect(target);
  socket.on('error', () => {});
  socket.write(bytes);
  await new Promise<void>((resolve) => socket.on('close', () => resolve()));
}

async function pair(t: { after(fn: () => Promise<void>): void }): Promise<[Node, Node]> {
  const a = await node(t, 'a', { b: nowhere });
  const b = await node(t, 'b', { a: a.transport.address() });
  a.transport.setPeerAddress('b', b.transport.address());
  return [a, b];
}

test('frames flow both ways, in order', async (t) => {
  const [a, b] = await pair(t);
  for (let i = 0; i < 50; i++) a.transport.send('b', Buffer.from(`ab${i}`));
  b.transport.send('a', Buffer.from('ba'));
  await waitFor(() => b.received.length === 50 && a.received.length === 1, { timeoutMs, what: 'delivery' });
  assert.deepStrictEqual(
    b.received,
    Array.from({ length: 50 }, (_, i) => ['a', `ab${i}`]),
  );
  assert.deepStrictEqual(a.received, [['b', 'ba']]);
  assert.equal(b.transport.counters.framesReceived, 50);
});

const rejections: Array<
  [string, (target: PeerAddress) => Buffer, keyof TcpTransport['counters']['rejected']]
> = [
  [
    'a bad MAC',
    () =>
      encodeFrame(
        { clusterId: 'test', from: 'a', to: 'b', payload: Buffer.from('x') },
        'not-the-secret-at-all',
      ),
    'bad-mac',
  ],
  [
    'another cluster',
    () => encodeFrame({ clusterId: 'other', from: 'a', to: 'b', payload: Buffer.from('x') }, SECRET),
    'wrong-cluster',
  ],
  [
    'an unknown peer',
    () => encodeFrame({ clusterId: 'test', from: 'mallory', to: 'b', payload: Buffer.from('x') }, SECRET),
    'unknown-peer',
  ],
  [
    'another recipient',
    () => encodeFrame({ clusterId: 'test', from: 'a', to: 'c', payload: Buffer.from('x') }, SECRET),
    'wrong-recipient',
  ],
  [
    'an oversized frame',
    () => {
      const head = Buffer.alloc(4);
      head.writeUInt32BE(1 << 30, 0);
      return head;
    },
    'oversize',
  ],
];

for (const [what, build, counter] of rejections) {
  test(`a frame from ${what} is dropped, counted, its connection closed, and the node goes on`, async (t) => {
    const [a, b] = await pair(t);
    await sendRaw(b.transport.address(), build(b.transport.address()));
    assert.equal(b.transport.counters.rejected[counter], 1);
    assert.deepStrictEqual(b.received, []);
    a.transport.send('b', Buffer.from('still works'));
    await waitFor(() => b.received.length === 1, { timeoutMs, what: 'a good frame after the bad one' });
    assert.deepStrictEqual(b.received, [['a', 'still works']]);
  });
}

test('good frames before a bad one on the same connection are delivered', async (t) => {
  const [, b] = await pair(t);
  const good = encodeFrame({ clusterId: 'test', from: 'a', to: 'b', payload: Buffer.from('good') }, SECRET);
  const bad = encodeFrame(
    { clusterId: 'test', from: 'a', to: 'b', payload: Buffer.from('bad') },
    'wrong-secret-xx',
  );
  await sendRaw(b.transport.address(), Buffer.concat([good, bad, good]));
  assert.deepStrictEqual(b.received, [['a', 'good']]);
  assert.equal(b.transport.counters.rejected['bad-mac'], 1);
});

test('the sender reconnects after its peer restarts', async (t) => {
  const [a, b] = await pair(t);
  const port = b.transport.address().port;
  a.transport.send('b', Buffer.from('before'));
  await waitFor(() => b.received.length === 1, { timeoutMs, what: 'first delivery' });
  await b.transport.stop();
  const restarted = await node(t, 'b', { a: a.transport.address() }, { listen: { host: '127.0.0.1', port } });
  // Frames sent while the peer was away may be lost (Raft retransmits); keep sending until one lands.
  await waitFor(
    () => {
      a.transport.send('b', Buffer.from('after'));
      return restarted.received.some(([, text]) => text === 'after');
    },
    { timeoutMs, intervalMs: 25, what: 'delivery to the restarted peer' },
  );
});

test('a full queue drops the oldest frames and counts them', async (t) => {
  const port = await freePort();
  const a = await node(t, 'a', { b: { host: '127.0.0.1', port } }, { maxQueuedFrames: 3 });
  for (let i = 0; i < 10; i++) a.transport.send('b', Buffer.from(`m${i}`));
  assert.equal(a.transport.counters.framesDroppedQueueFull, 7);
  const b = await node(t, 'b', { a: a.transport.address() }, { listen: { host: '127.0.0.1', port } });
  await waitFor(() => b.received.length === 3, { timeoutMs, what: 'the queued frames' });
  assert.deepStrictEqual(b.received, [
    ['a', 'm7'],
    ['a', 'm8'],
    ['a', 'm9'],
  ]);
});

test('sending to a peer the transport does not know is a programmer error', async (t) => {
  const a = await node(t, 'a', { b: nowhere });
  assert.throws(() => a.transport.send('zed', Buffer.from('x')), /unknown peer zed/);
});

test('peers can be added and removed at run time', async (t) => {
  const a = await node(t, 'a', {});
  const c = await node(t, 'c', { a: a.transport.address() });
  a.transport.setPeerAddress('c', c.transport.address());
  c.transport.send('a', Buffer.from('hello from c'));
  a.transport.send('c', Buffer.from('hello from a'));
  await waitFor(() => a.received.length === 1 && c.received.length === 1, {
    timeoutMs,
    what: 'the new peer',
  });
  a.transport.removePeer('c');
  assert.equal(a.transport.hasPeer('c'), false);
  await waitFor(
    () => {
      c.transport.send('a', Buffer.from('after removal'));
      return a.transport.counters.rejected['unknown-peer'] > 0;
    },
    { timeoutMs, intervalMs: 25, what: 'frames of the removed peer to be refused' },
  );
  assert.deepStrictEqual(a.received, [['c', 'hello from c']]);
});

test('a silent inbound connection is closed, and a newer connection from a peer replaces its older one', async (t) => {
  const a = await node(t, 'a', { b: nowhere }, { firstFrameTimeoutMs: 100 });
  const silent = net.connect(a.transport.address());
  silent.on('error', () => {});
  await new Promise<void>((resolve) => silent.on('close', () => resolve()));

  const frame = encodeFrame({ clusterId: 'test', from: 'b', to: 'a', payload: Buffer.from('x') }, SECRET);
  const first = net.connect(a.transport.address());
  first.on('error', () => {});
  const firstClosed = new Promise<void>((resolve) => first.on('close', () => resolve()));
  first.write(frame);
  await waitFor(() => a.received.length === 1, { timeoutMs, what: 'the first frame' });
  const second = net.connect(a.transport.address());
  second.on('error', () => {});
  t.after(async () => {
    second.destroy();
  });
  second.write(frame);
  await firstClosed;
  assert.equal(a.received.length, 2);
});
