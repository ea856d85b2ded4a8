import assert from 'node:assert/strict';
import { test } from 'node:test';
import { requiredSyncStandbys, syncFlushed } from '../../src/exactly-once/sync-flush.ts';

test('synchronous_standby_names: how many standbys must flush (PostgreSQL config.sgml forms)', () => {
  assert.equal(requiredSyncStandbys(''), 0);
  assert.equal(requiredSyncStandbys('   '), 0);
  assert.equal(requiredSyncStandbys('ANY 1 ("b1", "b2")'), 1);
  assert.equal(requiredSyncStandbys('any 2 (s1, s2, s3)'), 2);
  assert.equal(requiredSyncStandbys('FIRST 2 (s1, s2, s3)'), 2);
  assert.equal(requiredSyncStandbys('3 (s1, s2, s3)'), 3);
  assert.equal(requiredSyncStandbys('s1, s2'), 1);
  assert.equal(requiredSyncStandbys('*'), 1);
});

test('flushed when enough synchronous (sync or quorum) standbys reached the target', () => {
  const at = (syncState: string, flushLsn: bigint | null) => ({ syncState, flushLsn });
  assert.equal(syncFlushed(100n, 0, []), true, 'asynchronous: nothing to wait for');
  assert.equal(syncFlushed(100n, 1, []), false, 'no standby streams');
  assert.equal(syncFlushed(100n, 1, [at('quorum', 99n)]), false);
  assert.equal(syncFlushed(100n, 1, [at('quorum', 100n)]), true);
  assert.equal(syncFlushed(100n, 1, [at('quorum', 99n), at('quorum', 150n)]), true);
  assert.equal(syncFlushed(100n, 2, [at('quorum', 99n), at('quorum', 150n)]), false);
  assert.equal(syncFlushed(100n, 1, [at('sync', 120n), at('potential', 90n)]), true);
  assert.equal(syncFlushed(100n, 1, [at('potential', 120n), at('async', 130n)]), false, 'not synchronous');
  assert.equal(syncFlushed(100n, 1, [at('quorum', null)]), false, 'no flush position (no privilege)');
});
