import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configSchema } from '../../src/config/schema.ts';
import { silentLogger } from '../../src/log.ts';
import { raftDriverOptions } from '../../src/raft/from-config.ts';
import { MemoryStateMachine } from './support/memory-state-machine.ts';

const members = [
  { name: 'a', raftPort: 7401, apiPort: 8001 },
  { name: 'b', raftPort: 7402, apiPort: 8002, host: '10.0.0.2' },
  { name: 'w', kind: 'witness', raftPort: 7403, apiPort: 8003 },
];
const wiring = { logger: silentLogger(), stateMachine: new MemoryStateMachine() };

test('the sidecar configuration maps onto driver options', () => {
  const config = configSchema.parse({
    cluster: { name: 'prod', secret: 'sixteen-chars-or-more' },
    node: { name: 'a', dataDir: '/var/lib/pgward' },
    members,
    raft: { port: 7401 },
  });
  const options = raftDriverOptions(config, wiring);
  assert.equal(options.id, 'a');
  assert.equal(options.clusterId, 'prod');
  assert.equal(options.dataDir, '/var/lib/pgward/raft');
  assert.deepStrictEqual(options.bootstrap, { voters: ['a', 'b'], witnesses: ['w'], learners: [] });
  assert.deepStrictEqual(
    [...options.peers],
    [
      ['b', { host: '10.0.0.2', port: 7402 }],
      ['w', { host: '127.0.0.1', port: 7403 }],
    ],
  );
  assert.equal(options.timing.leaseMs, 400);
});

test('a missing secret or a node outside members is a clear error', () => {
  const base = { node: { name: 'a', dataDir: '/d' }, members };
  assert.throws(() => raftDriverOptions(configSchema.parse(base), wiring), /cluster\.secret is required/);
  const stranger = {
    ...base,
    cluster: { secret: 'sixteen-chars-or-more' },
    node: { name: 'z', dataDir: '/d' },
  };
  assert.throws(() => raftDriverOptions(configSchema.parse(stranger), wiring), /node z is not in members/);
});
