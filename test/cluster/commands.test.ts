import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type ClusterCommand,
  CommandDecodeError,
  decodeCommand,
  encodeCommand,
  type MemberSpec,
} from '../../src/cluster/commands.ts';

const member: MemberSpec = {
  name: 'node4',
  kind: 'member',
  host: '127.0.0.1',
  raftPort: 7404,
  apiPort: 8004,
  pgPort: 15434,
  proxyPort: 6434,
};

const every: ClusterCommand[] = [
  { type: 'noop' },
  { type: 'promoted', term: 7, node: 'node2', lsn: 0xffff_ffff_ffff_fff0n },
  { type: 'health', node: 'node1', lsn: 50331744n, healthy: true, streaming: true },
  { type: 'health', node: 'node3', lsn: null, healthy: false, streaming: false },
  { type: 'member-add', member },
  { type: 'member-add', member: { ...member, name: 'w1', kind: 'witness', pgPort: null, proxyPort: null } },
  { type: 'member-remove', name: 'node4' },
  { type: 'switchover-intent', term: 3, from: 'node1', to: 'node2' },
  { type: 'switchover-abort', term: 3 },
  { type: 'durability', term: 3, mode: 'async' },
];

test('every command survives encode → decode unchanged, LSNs as bigint', () => {
  for (const command of every) assert.deepEqual(decodeCommand(encodeCommand(command)), command);
});

test('LSNs above 2^53 keep every bit', () => {
  const decoded = decodeCommand(encodeCommand({ type: 'promoted', term: 1, node: 'a', lsn: 2n ** 64n - 1n }));
  assert.equal(decoded.type === 'promoted' && decoded.lsn, 2n ** 64n - 1n);
});

test('malformed data is a CommandDecodeError naming the problem, never a crash', () => {
  const bytes = (s: string) => new TextEncoder().encode(s);
  assert.throws(() => decodeCommand(bytes('{')), CommandDecodeError);
  assert.throws(() => decodeCommand(new Uint8Array([0xff, 0xfe])), /not UTF-8 JSON/);
  assert.throws(() => decodeCommand(bytes('{"v":2,"c":{"type":"noop"}}')), CommandDecodeError);
  assert.throws(() => decodeCommand(bytes('{"v":1,"c":{"type":"promote"}}')), CommandDecodeError);
  assert.throws(
    () => decodeCommand(bytes('{"v":1,"c":{"type":"promoted","term":1,"node":"a","lsn":"-1"}}')),
    /LSN/,
  );
  assert.throws(() => decodeCommand(new Uint8Array(70 * 1024)), /cap/);
});

test('an invalid command is refused before it reaches the log', () => {
  assert.throws(() => encodeCommand({ type: 'promoted', term: 0, node: 'a', lsn: 1n }));
  assert.throws(() => encodeCommand({ type: 'promoted', term: 1, node: '', lsn: 1n }));
});
