// Failover decisions, as pure functions of what a sidecar observed. The controller
// gathers the inputs (probe results, Raft status, the applied cluster state) and
// carries out the answer; every rule that decides who may write lives here.
import type { MemberKind } from './commands.ts';

/** One member as the leader sees it when picking whom to hand leadership to. */
export interface BackupCandidate {
  name: string;
  kind: MemberKind;
  healthy: boolean;
  /** Its walreceiver streamed from the current primary recently (see `mayCampaign`). */
  streaming: boolean;
  /** max(receive, replay) LSN: what it could replay before promoting; null when unknown. */
  lsn: bigint | null;
}

/** The primary's sidecar hands over leadership once its PostgreSQL failed this many probes in a row. */
export function shouldStepDown(consecutiveProbeFailures: number, probeFailuresThreshold: number): boolean {
  return consecutiveProbeFailures >= probeFailuresThreshold;
}

/**
 * The most advanced healthy, streaming database member other than `self`; ties go
 * to the smaller name so every sidecar would pick the same one. Null when none fits.
 */
export function transferTarget(candidates: readonly BackupCandidate[], self: string): string | null {
  let best: BackupCandidate | null = null;
  for (const candidate of candidates) {
    if (candidate.name === self || candidate.kind !== 'member') continue;
    if (!candidate.healthy || !candidate.streaming || candidate.lsn === null) continue;
    if (best === null || best.lsn === null || candidate.lsn > best.lsn) best = candidate;
    else if (candidate.lsn === best.lsn && candidate.name < best.name) best = candidate;
  }
  return best?.name ?? null;
}

export interface CampaignInput {
  self: string;
  kind: MemberKind;
  pgHealthy: boolean;
  /** PostgreSQL runs as a standby (pg_is_in_recovery). */
  pgInRecovery: boolean;
  /** The walreceiver streamed within the streaming grace (a crashed primary ends streaming at once). */
  streamedRecently: boolean;
  /** The primary of the last applied promotion; null before the first one. */
  appliedPrimary: string | null;
  /** This member is the configured bootstrap primary. */
  bootstrapPrimary: boolean;
  /** How long no leader has been heard (since boot if never). */
  leaderlessMs: number;
  /** After this long without a leader, any healthy database member may campaign: the vote restriction still orders them. */
  campaignFallbackMs: number;
}

/**
 * Whether this member may start an election. A witness never does; a member does
 * only with a healthy PostgreSQL that can hold every acknowledged commit: a standby
 * that was streaming, or the primary that the log names (a restart of the whole
 * cluster, or bootstrap). The fallback keeps the group live when nobody streams.
 */
export function mayCampaign(input: CampaignInput): boolean {
  if (input.kind === 'witness' || !input.pgHealthy) return false;
  const fallback = input.leaderlessMs >= input.campaignFallbackMs;
  // Before the first promotion the bootstrap primary leads, so bootstrap is no failover.
  if (input.appliedPrimary === null) return input.bootstrapPrimary || fallback;
  // A primary of an older term must be demoted, never re-elected.
  if (!input.pgInRecovery) return input.appliedPrimary === input.self;
  return input.streamedRecently || fallback;
}

/**
 * The vote restriction: refuse a candidate whose PostgreSQL is behind ours, so the
 * winner holds every synchronously acknowledged commit. A voter without a
 * PostgreSQL (witness, or one that is down) has nothing to protect.
 */
export function grantVote(ownLsn: bigint | null, candidateLsn: bigint | null): boolean {
  if (ownLsn === null) return true;
  if (candidateLsn === null) return false;
  return candidateLsn >= ownLsn;
}

export interface VetoInput {
  self: string;
  /** standby.signal is present (PostgreSQL is, or restarts as, a backup). */
  pgIsStandby: boolean;
  pgHealthy: boolean;
  /** We stopped our own PostgreSQL (self-fence): its last view of the backups' flush bounds what it acknowledged. */
  selfFenced: boolean;
  /** The primary of the last applied promotion; null before the first one. */
  appliedPrimary: string | null;
}

/**
 * Whether this voter refuses every candidate (votes as if its LSN were infinite).
 * Only the primary of the applied promotion whose PostgreSQL died without us stopping
 * it: it cannot know what it acknowledged last, so the backups decide among
 * themselves by their LSNs. A former primary that a newer promotion already replaced
 * (demoted, rewinding, re-cloning: not running, no standby.signal yet) protects
 * nothing: the new primary's election already covered everything it acknowledged,
 * and vetoing would deadlock the next election when that new primary dies too
 * (seen in the flap drill: the old primary mid-rewind and the dead new primary both
 * refused the last backup, leaving the cluster without a primary).
 */
export function vetoesEveryVote(input: VetoInput): boolean {
  if (input.pgIsStandby || input.pgHealthy || input.selfFenced) return false;
  return input.appliedPrimary === null || input.appliedPrimary === input.self;
}

export interface FenceInput {
  /** PostgreSQL is running and not in recovery. */
  pgRunningAsPrimary: boolean;
  /** The lease is valid right now (leader, own promotion applied, lease not expired). */
  leaseValid: boolean;
  /** When this sidecar last held a valid lease (monotonic ms); null if never in this process. */
  leaseLastValidAtMs: number | null;
  nowMs: number;
  graceMs: number;
}

/**
 * Self-fencing: a sidecar that held the lease and lost it for longer than the grace
 * period stops its PostgreSQL, so a primary that cannot be reached (partition,
 * paused sidecar) does not keep accepting direct writes. A primary that never held
 * the lease in this process is handled by `followerAction` (demote once the log
 * names another primary) instead.
 */
export function shouldSelfFence(input: FenceInput): boolean {
  if (!input.pgRunningAsPrimary || input.leaseValid || input.leaseLastValidAtMs === null) return false;
  return input.nowMs - input.leaseLastValidAtMs > input.graceMs;
}

export type LocalPostgresState = 'primary' | 'standby' | 'stopped';

export interface FollowerInput {
  self: string;
  pg: LocalPostgresState;
  /** Raft term this sidecar knows. */
  currentTerm: number;
  /** Term and node of the last applied promotion. */
  promotedTerm: number;
  appliedPrimary: string | null;
  /** Whom primary_conninfo points to now (null: follows nobody). */
  following: string | null;
  /** The data directory was last run as a primary that is not the applied one (needs a rewind). */
  diverged: boolean;
  /** PostgreSQL is stopped and its data directory is gone (a rebuild from a base backup was cut short). */
  dataMissing?: boolean;
}

export type FollowerAction =
  | { kind: 'none' }
  /** A newer term than the promotion we follow: stop streaming so the old primary cannot finish a sync commit. */
  | { kind: 'stop-following' }
  /** Point primary_conninfo at the applied primary and reload. */
  | { kind: 'follow'; primary: string }
  /** Our PostgreSQL is (or was) a primary of an older term: stop it, pg_rewind from `primary`, start as a standby. */
  | { kind: 'demote'; primary: string }
  /** PostgreSQL is stopped and clean: start it as a standby of `primary`. */
  | { kind: 'start-standby'; primary: string }
  /** PostgreSQL is stopped and has no data directory: clone `primary` (base backup), start as its standby. */
  | { kind: 'rebuild'; primary: string };

/** What a non-leader database member does to its PostgreSQL, given the applied state. */
export function followerAction(input: FollowerInput): FollowerAction {
  const newerTermPending = input.currentTerm > input.promotedTerm;
  const primary = input.appliedPrimary;
  if (primary === null || primary === input.self) {
    // Nobody else was promoted: hold still (a restarted primary waits to be re-elected).
    return input.pg === 'standby' && input.following !== null && newerTermPending
      ? { kind: 'stop-following' }
      : { kind: 'none' };
  }
  // While a newer term has no promotion yet, the applied primary may be the one that
  // just failed: wait for the new leader's Promoted instead of rejoining a dead node.
  if (newerTermPending) {
    return input.pg === 'standby' && input.following !== null ? { kind: 'stop-following' } : { kind: 'none' };
  }
  // A rebuild whose source died mid-copy left no data dir: nothing to rewind or start, only to clone.
  if (input.pg === 'stopped' && input.dataMissing === true) return { kind: 'rebuild', primary };
  if (input.pg === 'primary' || input.diverged) return { kind: 'demote', primary };
  if (input.pg === 'stopped') return { kind: 'start-standby', primary };
  return input.following === primary ? { kind: 'none' } : { kind: 'follow', primary };
}

export interface LeaderInput {
  self: string;
  pg: LocalPostgresState;
  pgHealthy: boolean;
  currentTerm: number;
  promotedTerm: number;
  appliedPrimary: string | null;
  /** The walreceiver has stopped and replay reached the received LSN. */
  replayCaughtUp: boolean;
  consecutiveProbeFailures: number;
  probeFailuresThreshold: number;
}

export type LeaderAction =
  | { kind: 'none' }
  /** Stop streaming and wait until replay catches up before promoting. */
  | { kind: 'prepare-promotion' }
  /** pg_promote() (if still a standby), then commit Promoted{currentTerm, self, S}. */
  | { kind: 'promote' }
  /** The log names us as primary and our PostgreSQL is stopped cleanly: start it. */
  | { kind: 'start-primary' }
  /** Our PostgreSQL is failing: hand leadership to the best backup. */
  | { kind: 'step-down' };

/** What the Raft leader does until its promotion for the current term is applied, and after. */
export function leaderAction(input: LeaderInput): LeaderAction {
  if (shouldStepDown(input.consecutiveProbeFailures, input.probeFailuresThreshold))
    return { kind: 'step-down' };
  const promotedNow = input.promotedTerm === input.currentTerm && input.appliedPrimary === input.self;
  if (promotedNow) return { kind: 'none' };
  if (input.pg === 'stopped') {
    return input.appliedPrimary === input.self || input.appliedPrimary === null
      ? { kind: 'start-primary' }
      : { kind: 'step-down' };
  }
  if (!input.pgHealthy) return { kind: 'none' };
  if (input.pg === 'standby' && !input.replayCaughtUp) return { kind: 'prepare-promotion' };
  return { kind: 'promote' };
}
