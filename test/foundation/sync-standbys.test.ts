import assert from 'node:assert/strict';
import { test } from 'node:test';
import { desiredSyncStandbys, namesInQuorum, quorumNames } from '../../src/postgres/sync-standbys.ts';

test('quorum over the healthy backups, sorted and quoted', () => {
  assert.equal(quorumNames(['node3', 'node2', 'node3']), 'ANY 1 ("node2", "node3")');
  assert.equal(quorumNames([]), '');
  assert.deepEqual(
    desiredSyncStandbys({
      healthyBackups: ['node3'],
      current: 'ANY 1 ("node2", "node3")',
      fallbackBackups: ['node2', 'node3'],
      durability: 'block',
    }),
    { names: 'ANY 1 ("node3")', mode: 'quorum', blocked: false },
  );
});

test('block: with no healthy backup the last names stay, so writes wait', () => {
  assert.deepEqual(
    desiredSyncStandbys({
      healthyBackups: [],
      current: 'ANY 1 ("node2")',
      fallbackBackups: ['node2', 'node3'],
      durability: 'block',
    }),
    { names: 'ANY 1 ("node2")', mode: 'quorum', blocked: true },
  );
});

test('block on a fresh primary: waits for any configured backup', () => {
  assert.deepEqual(
    desiredSyncStandbys({
      healthyBackups: [],
      current: '',
      fallbackBackups: ['node3', 'node2'],
      durability: 'block',
    }),
    { names: 'ANY 1 ("node2", "node3")', mode: 'quorum', blocked: true },
  );
});

test('degrade: with no healthy backup commits go asynchronous', () => {
  assert.deepEqual(
    desiredSyncStandbys({
      healthyBackups: [],
      current: 'ANY 1 ("node2")',
      fallbackBackups: ['node2'],
      durability: 'degrade',
    }),
    { names: '', mode: 'async', blocked: false },
  );
});

test('a single node without backups runs asynchronously', () => {
  assert.deepEqual(
    desiredSyncStandbys({ healthyBackups: [], current: '', fallbackBackups: [], durability: 'block' }),
    { names: '', mode: 'async', blocked: false },
  );
});

test('block: a quorum naming a removed member is rebuilt over the remaining backups', () => {
  assert.deepEqual(
    desiredSyncStandbys({
      healthyBackups: [],
      current: 'ANY 1 ("node2", "node3")',
      fallbackBackups: ['node2'],
      durability: 'block',
    }),
    { names: 'ANY 1 ("node2")', mode: 'quorum', blocked: true },
  );
  // The last backup removed: nothing left to wait for (as for a single node), visibly async.
  assert.deepEqual(
    desiredSyncStandbys({
      healthyBackups: [],
      current: 'ANY 1 ("node2")',
      fallbackBackups: [],
      durability: 'block',
    }),
    { names: '', mode: 'async', blocked: false },
  );
});

test('namesInQuorum reads back what quorumNames wrote', () => {
  assert.deepEqual(namesInQuorum(quorumNames(['b', 'a', 'we"ird'])), ['a', 'b', 'we"ird']);
  assert.deepEqual(namesInQuorum(''), []);
});
