import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { type ClusterView, StaticTopology } from '../../src/cluster/view.ts';
import { silentLogger } from '../../src/log.ts';
import { ApiPollTopology } from '../../src/topology/api-poll.ts';
import { FollowerTopology } from '../../src/topology/follower.ts';
import { RedisTopologyPublisher, RedisTopologySubscriber, streamName } from '../../src/topology/redis.ts';
import { encodeTopologyMessage } from '../../src/topology/wire.ts';
import { fakeMember } from '../support/fake-member.ts';
import { waitFor } from '../support/wait.ts';

const SHARED_REDIS = 'redis://127.0.0.1:6379';
const view = (term: number, primary: string | null): ClusterView => ({
  term,
  primary,
  promotedAtLsn: null,
  members: [],
});

function options(url: string) {
  const channel = `pgward-test:${randomUUID()}`;
  return {
    url,
    channel,
    cluster: 'c',
    node: 'a',
    streamMaxLen: 20,
    republishIntervalMs: 200,
    breakerResetMs: 300,
  };
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  );
  const probe = new Redis(port, '127.0.0.1', {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  probe.on('error', () => undefined);
  try {
    await waitFor(
      async () => {
        if (probe.status !== 'ready') await probe.connect().catch(() => undefined);
        return (await probe.ping()) === 'PONG';
      },
      { timeoutMs: 10_000, what: `redis-server on port ${port}` },
    );
  } finally {
    probe.disconnect();
  }
  return child;
}

async function killRedis(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGKILL');
  await once(child, 'exit');
}

test('members publish view changes; followers re-route at once, ignore older terms, and catch up from the stream', async (t) => {
  const opts = options(SHARED_REDIS);
  const admin = new Redis(SHARED_REDIS);
  t.after(async () => {
    await admin.del(streamName(opts));
    admin.disconnect();
  });
  const source = new StaticTopology(view(1, 'a'));
  const publisher = new RedisTopologyPublisher(source, opts, silentLogger());
  const follower = new FollowerTopology(view(0, null), silentLogger());
  const subscriber = new RedisTopologySubscriber(follower, opts, silentLogger());
  t.after(() => publisher.stop());
  t.after(() => subscriber.stop());
  await subscriber.start();
  await publisher.start();
  await waitFor(() => follower.current().primary === 'a', { timeoutMs: 10_000, what: 'the first view' });

  source.set(view(2, 'b'));
  await waitFor(() => follower.current().primary === 'b', {
    timeoutMs: 10_000,
    what: 'term 2 via the channel',
  });

  // An older term and garbage on the channel change nothing.
  await admin.publish(opts.channel, encodeTopologyMessage({ cluster: 'c', from: 'x', view: view(1, 'a') }));
  await admin.publish(opts.channel, '{"broken');
  await admin.publish(
    opts.channel,
    encodeTopologyMessage({ cluster: 'other', from: 'x', view: view(9, 'x') }),
  );
  source.set(view(3, 'a'));
  await waitFor(() => follower.current().term === 3, { timeoutMs: 10_000, what: 'term 3' });
  assert.equal(follower.current().primary, 'a');

  // A follower that starts late reads the latest view from the stream without waiting for a change.
  const late = new FollowerTopology(view(0, null), silentLogger());
  const lateSubscriber = new RedisTopologySubscriber(
    late,
    { ...opts, republishIntervalMs: 60_000 },
    silentLogger(),
  );
  t.after(() => lateSubscriber.stop());
  await lateSubscriber.start();
  await waitFor(() => late.current().term === 3, { timeoutMs: 10_000, what: 'latest view from the stream' });

  // The stream stays bounded (MAXLEN ~ trims in whole nodes, so allow slack).
  for (let term = 4; term < 200; term++) source.set(view(term, 'a'));
  await waitFor(() => follower.current().term === 199, { timeoutMs: 20_000, what: 'term 199' });
  assert.ok((await admin.xlen(streamName(opts))) <= 150, 'stream is capped');
});

test('Redis stopping and coming back: publishing never fails the member, followers catch up after the restart', async (t) => {
  const port = await freePort();
  let redis = await startRedis(port);
  t.after(() => killRedis(redis));
  const opts = options(`redis://127.0.0.1:${port}`);
  const source = new StaticTopology(view(1, 'a'));
  const publisher = new RedisTopologyPublisher(source, opts, silentLogger());
  const follower = new FollowerTopology(view(0, null), silentLogger());
  const subscriber = new RedisTopologySubscriber(follower, opts, silentLogger());
  t.after(() => publisher.stop());
  t.after(() => subscriber.stop());
  await subscriber.start();
  await publisher.start();
  await waitFor(() => follower.current().term === 1, { timeoutMs: 10_000, what: 'term 1' });

  await killRedis(redis);
  source.set(view(2, 'b'));
  source.set(view(3, 'b'));
  assert.equal(follower.current().term, 1, 'nothing arrives while Redis is down');

  redis = await startRedis(port);
  await waitFor(() => follower.current().term === 3, {
    timeoutMs: 20_000,
    what: 'term 3 after Redis returned',
  });
  assert.equal(follower.current().primary, 'b');
  source.set(view(4, 'a'));
  await waitFor(() => follower.current().term === 4, { timeoutMs: 10_000, what: 'term 4 via the channel' });
});

test('with Redis unreachable a follower still follows the members through the API', async (t) => {
  const member = await fakeMember(view(1, 'a'));
  t.after(() => member.close());
  const follower = new FollowerTopology(view(0, null), silentLogger());
  const deadRedis = options(`redis://127.0.0.1:${await freePort()}`);
  const subscriber = new RedisTopologySubscriber(follower, deadRedis, silentLogger());
  const poller = new ApiPollTopology(follower, { memberUrls: [member.url] }, silentLogger());
  t.after(() => subscriber.stop());
  t.after(() => poller.stop());
  await subscriber.start();
  await poller.start();
  await waitFor(() => follower.current().primary === 'a', { timeoutMs: 10_000, what: 'primary a' });
  member.set(view(2, 'b'));
  await waitFor(() => follower.current().primary === 'b', { timeoutMs: 10_000, what: 'primary b' });
});
