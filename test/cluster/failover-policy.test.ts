import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type BackupCandidate,
  type CampaignInput,
  type FollowerInput,
  followerAction,
  grantVote,
  type LeaderInput,
  leaderAction,
  mayCampaign,
  shouldSelfFence,
  shouldStepDown,
  transferTarget,
  vetoesEveryVote,
} from '../../src/cluster/failover-policy.ts';

const backup = (name: string, lsn: bigint | null, extra: Partial<BackupCandidate> = {}): BackupCandidate => ({
  name,
  kind: 'member',
  healthy: true,
  streaming: true,
  lsn,
  ...extra,
});

test('detection: step down after probeFailures misses in a row, not before', () => {
  assert.equal(shouldStepDown(2, 3), false);
  assert.equal(shouldStepDown(3, 3), true);
});

test('transfer target: the most advanced healthy streaming backup, ties by name', () => {
  const candidates = [
    backup('node1', 900n),
    backup('node2', 500n),
    backup('node3', 700n),
    backup('node4', 800n, { healthy: false }),
    backup('node5', 850n, { streaming: false }),
    backup('w1', null, { kind: 'witness' }),
  ];
  assert.equal(transferTarget(candidates, 'node1'), 'node3');
  assert.equal(transferTarget([backup('b', 5n), backup('a', 5n)], 'x'), 'a');
  assert.equal(transferTarget([backup('node2', null)], 'node1'), null);
});

const campaign: CampaignInput = {
  self: 'node2',
  kind: 'member',
  pgHealthy: true,
  pgInRecovery: true,
  streamedRecently: true,
  appliedPrimary: 'node1',
  bootstrapPrimary: false,
  leaderlessMs: 0,
  campaignFallbackMs: 10_000,
};

test('campaign: a witness never, an unhealthy or non-streaming member not', () => {
  assert.equal(mayCampaign(campaign), true);
  assert.equal(mayCampaign({ ...campaign, kind: 'witness' }), false);
  assert.equal(mayCampaign({ ...campaign, pgHealthy: false }), false);
  assert.equal(mayCampaign({ ...campaign, streamedRecently: false }), false);
});

test('campaign: the bounded fallback keeps the group live when nobody streams', () => {
  assert.equal(mayCampaign({ ...campaign, streamedRecently: false, leaderlessMs: 10_000 }), true);
});

test('campaign: a running primary only if the log names it (restart) or it bootstraps', () => {
  const primary = { ...campaign, pgInRecovery: false };
  assert.equal(mayCampaign({ ...primary, appliedPrimary: 'node2' }), true);
  assert.equal(mayCampaign({ ...primary, appliedPrimary: 'node1' }), false);
  assert.equal(mayCampaign({ ...primary, appliedPrimary: null }), false);
  assert.equal(mayCampaign({ ...primary, appliedPrimary: null, bootstrapPrimary: true }), true);
});

test('campaign: before the first promotion only the bootstrap primary, unless nobody led for long', () => {
  assert.equal(mayCampaign({ ...campaign, appliedPrimary: null }), false);
  assert.equal(mayCampaign({ ...campaign, appliedPrimary: null, leaderlessMs: 10_000 }), true);
});

test('vote restriction: refuse a candidate behind us; a voter without PostgreSQL grants', () => {
  assert.equal(grantVote(100n, 99n), false);
  assert.equal(grantVote(100n, 100n), true);
  assert.equal(grantVote(100n, null), false);
  assert.equal(grantVote(null, null), true);
});

test('veto: only the applied primary whose PostgreSQL died votes for nobody', () => {
  const dead = { self: 'a', pgIsStandby: false, pgHealthy: false, selfFenced: false, appliedPrimary: 'a' };
  assert.equal(vetoesEveryVote(dead), true);
  assert.equal(vetoesEveryVote({ ...dead, appliedPrimary: null }), true, 'before the first promotion');
  assert.equal(vetoesEveryVote({ ...dead, pgHealthy: true }), false);
  assert.equal(vetoesEveryVote({ ...dead, selfFenced: true }), false);
  assert.equal(vetoesEveryVote({ ...dead, pgIsStandby: true }), false);
  // Replaced by a newer promotion (mid-rewind or re-clone): the new primary's
  // election covered what it acknowledged; a veto would deadlock the next election.
  assert.equal(vetoesEveryVote({ ...dead, appliedPrimary: 'b' }), false);
});

test('self-fence: only after holding the lease and losing it for longer than the grace', () => {
  const fence = {
    pgRunningAsPrimary: true,
    leaseValid: false,
    leaseLastValidAtMs: 1000,
    nowMs: 2001,
    graceMs: 1000,
  };
  assert.equal(shouldSelfFence(fence), true);
  assert.equal(shouldSelfFence({ ...fence, nowMs: 2000 }), false);
  assert.equal(shouldSelfFence({ ...fence, leaseValid: true }), false);
  assert.equal(shouldSelfFence({ ...fence, leaseLastValidAtMs: null }), false);
  assert.equal(shouldSelfFence({ ...fence, pgRunningAsPrimary: false }), false);
});

const follower: FollowerInput = {
  self: 'node2',
  pg: 'standby',
  currentTerm: 3,
  promotedTerm: 3,
  appliedPrimary: 'node1',
  following: 'node1',
  diverged: false,
};

test('follower: follows the applied primary; re-points after a promotion (reload, no restart)', () => {
  assert.deepEqual(followerAction(follower), { kind: 'none' });
  assert.deepEqual(followerAction({ ...follower, following: 'node3' }), { kind: 'follow', primary: 'node1' });
  assert.deepEqual(followerAction({ ...follower, following: null }), { kind: 'follow', primary: 'node1' });
});

test('a stopped member without a data dir (a rebuild cut short) clones the primary again', () => {
  // Seen in the flap drill: the rewind source died mid-copy, the data dir was gone, and
  // starting a standby failed forever on the missing files.
  assert.deepEqual(followerAction({ ...follower, pg: 'stopped', dataMissing: true }), {
    kind: 'rebuild',
    primary: 'node1',
  });
  // Not while a newer term waits for its promotion: the source may be the node that just died.
  assert.deepEqual(followerAction({ ...follower, pg: 'stopped', dataMissing: true, currentTerm: 4 }), {
    kind: 'none',
  });
});

test('fencing (c): a newer term stops streaming from the old primary until its promotion applies', () => {
  assert.deepEqual(followerAction({ ...follower, currentTerm: 4 }), { kind: 'stop-following' });
  assert.deepEqual(followerAction({ ...follower, currentTerm: 4, following: null }), { kind: 'none' });
});

test('fencing (e): a primary of an older term, running or diverged, is demoted by rewind', () => {
  assert.deepEqual(followerAction({ ...follower, pg: 'primary' }), { kind: 'demote', primary: 'node1' });
  assert.deepEqual(followerAction({ ...follower, pg: 'stopped', diverged: true }), {
    kind: 'demote',
    primary: 'node1',
  });
  assert.deepEqual(followerAction({ ...follower, pg: 'stopped' }), {
    kind: 'start-standby',
    primary: 'node1',
  });
});

test('a newer term without its promotion: never rejoin the applied (maybe dead) primary yet', () => {
  assert.deepEqual(followerAction({ ...follower, currentTerm: 4, pg: 'primary' }), { kind: 'none' });
  assert.deepEqual(followerAction({ ...follower, currentTerm: 4, pg: 'stopped', diverged: true }), {
    kind: 'none',
  });
  assert.deepEqual(followerAction({ ...follower, currentTerm: 4, following: 'node3' }), {
    kind: 'stop-following',
  });
});

test('follower named primary by the log (restarted old primary) holds still', () => {
  assert.deepEqual(followerAction({ ...follower, pg: 'primary', appliedPrimary: 'node2' }), { kind: 'none' });
});

const leader: LeaderInput = {
  self: 'node2',
  pg: 'standby',
  pgHealthy: true,
  currentTerm: 4,
  promotedTerm: 3,
  appliedPrimary: 'node1',
  replayCaughtUp: true,
  consecutiveProbeFailures: 0,
  probeFailuresThreshold: 3,
};

test('leader: stop streaming and catch up, then promote; done once Promoted applied', () => {
  assert.deepEqual(leaderAction({ ...leader, replayCaughtUp: false }), { kind: 'prepare-promotion' });
  assert.deepEqual(leaderAction(leader), { kind: 'promote' });
  assert.deepEqual(leaderAction({ ...leader, promotedTerm: 4, appliedPrimary: 'node2', pg: 'primary' }), {
    kind: 'none',
  });
});

test('leader: re-elected primary commits a promotion without pg_promote; failing PostgreSQL steps down', () => {
  assert.deepEqual(leaderAction({ ...leader, pg: 'primary', appliedPrimary: 'node2' }), { kind: 'promote' });
  assert.deepEqual(leaderAction({ ...leader, consecutiveProbeFailures: 3 }), { kind: 'step-down' });
  assert.deepEqual(leaderAction({ ...leader, pg: 'stopped', appliedPrimary: 'node2' }), {
    kind: 'start-primary',
  });
  assert.deepEqual(leaderAction({ ...leader, pg: 'stopped' }), { kind: 'step-down' });
});
