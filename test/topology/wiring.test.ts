import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StaticTopology } from '../../src/cluster/view.ts';
import { parseConfig } from '../../src/config/load.ts';
import { silentLogger } from '../../src/log.ts';
import { ApiPollTopology } from '../../src/topology/api-poll.ts';
import { RedisTopologySubscriber } from '../../src/topology/redis.ts';
import { followerTopology, topologyPublisher } from '../../src/topology/wiring.ts';

const members = [
  { name: 'a', host: '10.0.0.1', raftPort: 7400, apiPort: 8008, pgPort: 5432 },
  { name: 'w', kind: 'witness', host: '10.0.0.3', raftPort: 7400, apiPort: 8008 },
];

test('members publish on Redis only when redis.url is set', () => {
  const source = new StaticTopology({ term: 1, primary: null, promotedAtLsn: null, members: [] });
  const without = parseConfig({ node: { name: 'a', dataDir: '/tmp/x' }, members });
  assert.equal(topologyPublisher(without, source, silentLogger()), null);
  const withRedis = parseConfig({
    node: { name: 'a', dataDir: '/tmp/x' },
    members,
    redis: { url: 'redis://127.0.0.1:1' },
  });
  assert.notEqual(topologyPublisher(withRedis, source, silentLogger()), null);
});

test('a proxy-only sidecar long-polls every member API and follows Redis when configured', () => {
  const config = parseConfig({
    node: { name: 'app', role: 'proxy', dataDir: '/tmp/x' },
    members,
    redis: { url: 'redis://127.0.0.1:1' },
  });
  const { topology, services } = followerTopology(config, silentLogger());
  assert.equal(services.length, 2);
  assert.ok(services[0] instanceof ApiPollTopology);
  assert.ok(services[1] instanceof RedisTopologySubscriber);
  const view = topology.current();
  assert.equal(view.term, 0);
  assert.equal(view.primary, null, 'no writes are routed before a member answers');
  assert.deepEqual(
    view.members.map((m) => [m.name, m.postgres]),
    [['a', { host: '10.0.0.1', port: 5432 }]],
  );
  assert.equal(followerTopology({ ...config, redis: { channel: 'x' } }, silentLogger()).services.length, 1);
});
