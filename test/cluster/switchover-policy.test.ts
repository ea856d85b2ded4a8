import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type DrainInput,
  drainBlockers,
  type RejoinInput,
  rejoinWithoutRewind,
  type SwitchoverInput,
  switchoverStep,
  targetHasFinalWal,
} from '../../src/cluster/switchover-policy.ts';
import { parseControlData } from '../../src/postgres/control-data.ts';

const proxy = (node: string, extra = {}) => ({
  node,
  reachable: true,
  holding: true,
  writesInFlight: 0,
  ...extra,
});

const drain: DrainInput = {
  proxies: [proxy('node1'), proxy('node2'), proxy('node3')],
  openTransactions: 0,
  sinceAnnounceMs: 50,
  leaseMs: 400,
};

test('drain: every proxy holds with nothing busy and no transaction is open', () => {
  assert.deepEqual(drainBlockers(drain), []);
  assert.deepEqual(
    drainBlockers({ ...drain, proxies: [proxy('node1'), proxy('node2', { holding: false })] }),
    ['node2: not holding yet'],
  );
  assert.deepEqual(drainBlockers({ ...drain, proxies: [proxy('node3', { writesInFlight: 2 })] }), [
    'node3: 2 write session(s) busy',
  ]);
  assert.deepEqual(drainBlockers({ ...drain, openTransactions: 1 }), ['postgres: 1 open transaction(s)']);
});

test('drain: an unanswered proxy blocks only for a lease (by then it holds or has stopped routing writes)', () => {
  const silent = { ...drain, proxies: [proxy('node2', { reachable: false, holding: false })] };
  assert.deepEqual(drainBlockers(silent), ['node2: no answer yet']);
  assert.deepEqual(drainBlockers({ ...silent, sinceAnnounceMs: 400 }), []);
  // Its running transactions still show on PostgreSQL itself.
  assert.deepEqual(drainBlockers({ ...silent, sinceAnnounceMs: 400, openTransactions: 1 }), [
    'postgres: 1 open transaction(s)',
  ]);
});

const step: SwitchoverInput = {
  announced: true,
  nowMs: 100,
  deadlineMs: 5000,
  drainDeadlineMs: 2000,
  blockers: [],
  targetHealthy: true,
  targetLsn: 50n,
  primaryLsn: 50n,
};

test('switchover: announce, drain (bounded), catch up, then shut down; abort when stuck', () => {
  assert.deepEqual(switchoverStep({ ...step, announced: false }), { kind: 'announce' });
  assert.deepEqual(switchoverStep({ ...step, blockers: ['node2: not holding yet'] }), {
    kind: 'drain',
    blockers: ['node2: not holding yet'],
  });
  // Past the drain bound the shutdown cuts off what still runs.
  assert.deepEqual(switchoverStep({ ...step, blockers: ['postgres: 1 open transaction(s)'], nowMs: 2000 }), {
    kind: 'shutdown',
  });
  assert.deepEqual(switchoverStep({ ...step, targetLsn: 40n }), { kind: 'catch-up' });
  assert.deepEqual(switchoverStep({ ...step, targetLsn: null }), { kind: 'catch-up' });
  assert.deepEqual(switchoverStep(step), { kind: 'shutdown' });
  assert.equal(switchoverStep({ ...step, nowMs: 5000 }).kind, 'abort');
  assert.equal(switchoverStep({ ...step, targetHealthy: false }).kind, 'abort');
  assert.equal(switchoverStep({ ...step, announced: false, targetHealthy: false }).kind, 'abort');
});

test('final WAL: the target must be past the start of the shutdown checkpoint record', () => {
  assert.equal(targetHasFinalWal(100n, null), false);
  assert.equal(targetHasFinalWal(100n, 100n), false);
  assert.equal(targetHasFinalWal(100n, 168n), true);
});

const rejoin: RejoinInput = {
  record: { term: 3, to: 'node2', checkpointLsn: 1000n, primaryChanges: 4 },
  control: { cleanShutdown: true, checkpointLsn: 1000n },
  appliedPrimary: 'node2',
  primaryChanges: 5,
  promotedAtLsn: 1104n,
};

test('rejoin without rewind: only the clean hand-over to the promotion that followed it', () => {
  assert.equal(rejoinWithoutRewind(rejoin), true);
  assert.equal(rejoinWithoutRewind({ ...rejoin, record: null }), false, 'no hand-over (a crash, a fence)');
  assert.equal(rejoinWithoutRewind({ ...rejoin, control: null }), false);
  assert.equal(
    rejoinWithoutRewind({ ...rejoin, control: { cleanShutdown: false, checkpointLsn: 1000n } }),
    false,
    'not shut down cleanly',
  );
  assert.equal(
    rejoinWithoutRewind({ ...rejoin, control: { cleanShutdown: true, checkpointLsn: 2000n } }),
    false,
    'it ran (as a primary) since the hand-over',
  );
  assert.equal(rejoinWithoutRewind({ ...rejoin, appliedPrimary: 'node3' }), false, 'another node took over');
  assert.equal(rejoinWithoutRewind({ ...rejoin, primaryChanges: 6 }), false, 'another failover in between');
  assert.equal(
    rejoinWithoutRewind({ ...rejoin, promotedAtLsn: 1000n }),
    false,
    'forked at or before our end',
  );
  assert.equal(rejoinWithoutRewind({ ...rejoin, promotedAtLsn: null }), false);
});

test('pg_controldata: state, latest checkpoint and its timeline', () => {
  const text = [
    'pg_control version number:            1300',
    'Database cluster state:               shut down',
    'Latest checkpoint location:           0/3000028',
    "Latest checkpoint's REDO location:    0/3000028",
    "Latest checkpoint's TimeLineID:       2",
    "Latest checkpoint's PrevTimeLineID:   2",
  ].join('\n');
  assert.deepEqual(parseControlData(text), { state: 'shut down', checkpointLsn: 0x3000028n, timeline: 2 });
  assert.equal(parseControlData(text.replace('shut down', 'in production')).state, 'in production');
  assert.throws(() => parseControlData('nothing'), /pg_controldata printed no/);
});
