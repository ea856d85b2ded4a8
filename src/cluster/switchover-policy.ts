// Planned switchover decisions, as pure functions of what the primary's sidecar
// observed (see switchover.ts for the IO). The hand-over is: record the intent
// (every proxy holds new transactions), wait until every proxy confirms the hold
// and has nothing running on the primary, let the target catch up, shut the
// primary down cleanly (its shutdown checkpoint streams to the backups), check the
// target holds that final WAL, then hand leadership over; the target promotes and
// the old primary restarts as its backup without pg_rewind.

/** What one proxy-running member answered about the hold (GET /health). */
export interface ProxyHoldReport {
  node: string;
  /** False when its API refused or did not answer in time. */
  reachable: boolean;
  /** It applied the switchover intent of this term: its proxy routes no new transaction to the primary. */
  holding: boolean;
  /** Write-port sessions of its proxy with work on a backend (or connecting to one). */
  writesInFlight: number;
}

export interface DrainInput {
  proxies: readonly ProxyHoldReport[];
  /** Client transactions open on the primary itself (catches clients that bypass the member proxies). */
  openTransactions: number;
  /** Since the intent was committed (local monotonic ms). */
  sinceAnnounceMs: number;
  /** A proxy that has not heard from the leader within the lease stops routing writes by itself. */
  leaseMs: number;
}

/**
 * What still blocks the drain; empty when the primary may be shut down. A proxy
 * that does not answer blocks only until a lease has passed since the intent: by
 * then it either applied the intent or stopped routing writes for want of a
 * leader (its running transactions still show in `openTransactions`).
 */
export function drainBlockers(input: DrainInput): string[] {
  const blockers: string[] = [];
  for (const proxy of input.proxies) {
    if (!proxy.reachable) {
      if (input.sinceAnnounceMs < input.leaseMs) blockers.push(`${proxy.node}: no answer yet`);
    } else if (!proxy.holding) {
      blockers.push(`${proxy.node}: not holding yet`);
    } else if (proxy.writesInFlight > 0) {
      blockers.push(`${proxy.node}: ${proxy.writesInFlight} write session(s) busy`);
    }
  }
  if (input.openTransactions > 0) blockers.push(`postgres: ${input.openTransactions} open transaction(s)`);
  return blockers;
}

export type SwitchoverStep =
  /** Record the intent in the log: proxies hold new transactions from here on. */
  | { kind: 'announce' }
  /** Wait for every proxy to hold and running work to finish (bounded by the drain deadline). */
  | { kind: 'drain'; blockers: string[] }
  /** Wait for the target's flushed LSN to reach ours, so the shutdown has little left to send. */
  | { kind: 'catch-up' }
  /** Shut the primary down cleanly: writes are held, the target has (nearly) everything. */
  | { kind: 'shutdown' }
  | { kind: 'abort'; reason: string };

export interface SwitchoverInput {
  announced: boolean;
  nowMs: number;
  /** The whole switchover gives up (releasing held writes) past this. */
  deadlineMs: number;
  /** Running work gets until here; past it the shutdown cuts it off. */
  drainDeadlineMs: number;
  /** drainBlockers(...) of the latest observation; ignored before the announce. */
  blockers: readonly string[];
  targetHealthy: boolean;
  /** The target's flushed LSN as the primary's walsender reports it. */
  targetLsn: bigint | null;
  primaryLsn: bigint | null;
}

/** The next step of a planned switchover on the current primary, up to its shutdown. */
export function switchoverStep(input: SwitchoverInput): SwitchoverStep {
  if (!input.targetHealthy) return { kind: 'abort', reason: 'the target is not a healthy streaming backup' };
  if (input.nowMs >= input.deadlineMs)
    return { kind: 'abort', reason: 'the primary did not drain and the target did not catch up in time' };
  if (!input.announced) return { kind: 'announce' };
  if (input.blockers.length > 0 && input.nowMs < input.drainDeadlineMs)
    return { kind: 'drain', blockers: [...input.blockers] };
  if (input.targetLsn === null || input.primaryLsn === null || input.targetLsn < input.primaryLsn) {
    return { kind: 'catch-up' };
  }
  return { kind: 'shutdown' };
}

/**
 * The target holds the old primary's final WAL: its received (or replayed) LSN is
 * past the start of the shutdown checkpoint record, so it holds that whole record
 * (an LSN past a record's start is the end of it or of a later one).
 */
export function targetHasFinalWal(finalCheckpointLsn: bigint, targetLsn: bigint | null): boolean {
  return targetLsn !== null && targetLsn > finalCheckpointLsn;
}

/** Written by the old primary's sidecar once its PostgreSQL stopped cleanly for a hand-over. */
export interface HandoverRecord {
  /** The term the old primary led. */
  term: number;
  /** The member leadership was handed to. */
  to: string;
  /** pg_controldata's latest checkpoint location after the clean shutdown. */
  checkpointLsn: bigint;
  /** ClusterState.primaryChanges when the hand-over began. */
  primaryChanges: number;
}

export interface ControlFileState {
  /** "Database cluster state: shut down" (a clean shutdown of a primary). */
  cleanShutdown: boolean;
  checkpointLsn: bigint;
}

export interface RejoinInput {
  record: HandoverRecord | null;
  /** The stopped data directory's control file; null when it could not be read. */
  control: ControlFileState | null;
  appliedPrimary: string | null;
  primaryChanges: number;
  /** S of the applied promotion. */
  promotedAtLsn: bigint | null;
}

/**
 * Whether a stopped former primary may simply restart as a backup of the applied
 * primary, with no pg_rewind: it was shut down cleanly for a hand-over and has not
 * run since (same checkpoint), and the only promotion since is the target's, at an
 * LSN past that checkpoint, so the new timeline forked after our last record and
 * our WAL is a prefix of its history. Anything else (a crash, a self-fence, another
 * failover in between) takes the pg_rewind path.
 */
export function rejoinWithoutRewind(input: RejoinInput): boolean {
  const { record, control } = input;
  if (record === null || control === null || !control.cleanShutdown) return false;
  if (control.checkpointLsn !== record.checkpointLsn) return false;
  if (input.appliedPrimary !== record.to || input.primaryChanges !== record.primaryChanges + 1) return false;
  return input.promotedAtLsn !== null && input.promotedAtLsn > record.checkpointLsn;
}
