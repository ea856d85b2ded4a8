import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newestTimeline, rewindCanWork, timelineOfWalFile } from '../../src/postgres/timeline.ts';

test('the newest timeline of a pg_wal listing: history files and segments, 1 when none', () => {
  assert.equal(newestTimeline([]), 1);
  assert.equal(newestTimeline(['000000010000000000000003', 'archive_status']), 1);
  assert.equal(
    newestTimeline(['00000002.history', '000000020000000000000005', '000000030000000000000005.partial']),
    3,
  );
  assert.equal(newestTimeline(['0000000A.history', '000000020000000000000005']), 10);
});

test('the timeline of a WAL file name', () => {
  assert.equal(timelineOfWalFile('000000030000000000000005'), 3);
  assert.throws(() => timelineOfWalFile('00000003.history'), /not a WAL segment name/);
});

test('rewind works only onto a newer timeline: the same timeline ID promoted twice diverged (clone)', () => {
  assert.equal(rewindCanWork(2, 3), true, 'the new primary followed this node, then promoted');
  assert.equal(rewindCanWork(3, 3), false, 'both promoted from timeline 2 into timeline 3');
  assert.equal(rewindCanWork(4, 3), false);
});
