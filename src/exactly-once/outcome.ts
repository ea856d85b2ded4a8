// Outcome resolution for a commit that was in flight when its backend was lost
// (reference/exactly-once.md §5.1), and what the client is told (§5.7). Pure: the
// shell asks the questions this module returns (query the transaction status,
// terminate the old backend, look up the key row) and feeds the answers back
// until a verdict comes out.

export type XactStatus = 'committed' | 'aborted' | 'in progress' | null;

/** `(pg_current_xact_id_if_assigned(), pg_current_wal_insert_lsn())` read just before COMMIT. */
export interface Fence {
  /** Null when the transaction never wrote (no xid assigned). */
  xid: bigint | null;
  insertLsn: bigint;
}

export interface InFlight {
  /**
   * `before-commit`: the proxy had not forwarded anything that commits.
   * `commit-sent`: COMMIT (or the end of a wrapped statement) was forwarded after the fence.
   * `unfenced`: something that may commit was forwarded without a fence (mode off,
   * or a statement that cannot be wrapped).
   */
  stage: 'before-commit' | 'commit-sent' | 'unfenced';
  fence: Fence | null;
  /** The transaction claimed an idempotency key: the ledger row is the commit evidence. */
  keyed: boolean;
}

export interface Facts {
  /** We reached the same server, in the same term, that ran the transaction. */
  samePrimary: boolean;
  /** S: final replay LSN of the promoted backup, when the primary changed. */
  promotedAtLsn: bigint | null;
  /** Answer to `xact-status`; undefined = not asked yet. */
  xactStatus?: XactStatus;
  /** The old backend was terminated and is gone (asked after `in progress` on the same primary). */
  oldBackendTerminated?: boolean;
  /** Answer to `key-row`; undefined = not asked yet. */
  keyRow?: 'present' | 'absent';
  /**
   * Answer to `sync-flushed` (same primary only): the synchronous standbys flushed the
   * primary's WAL past the commit within the bound; undefined = not asked yet.
   */
  syncFlushed?: boolean;
}

export type Verdict = 'committed' | 'not-committed' | 'unknown';

export type Step =
  | { kind: 'verdict'; verdict: Verdict; reason: string }
  /** `pg_xact_status(fence.xid)` on the server we reached (an error counts as null). */
  | { kind: 'ask'; question: 'xact-status' }
  /** `pg_terminate_backend(old pid)` and wait until it is gone, then ask again. */
  | { kind: 'ask'; question: 'terminate-old-backend' }
  /** Whether the ledger row of the key exists (read after the old backend can no longer commit). */
  | { kind: 'ask'; question: 'key-row' }
  /** Wait (bounded) until the synchronous standbys flushed the primary's WAL as far as it is now. */
  | { kind: 'ask'; question: 'sync-flushed' };

export function resolve(flight: InFlight, facts: Facts): Step {
  if (flight.stage === 'before-commit') {
    return verdict('not-committed', 'the backend was lost before anything that commits was sent');
  }
  // On the same primary an in-flight transaction can still commit; it must be
  // stopped before its absence means anything. After a failover the old primary is
  // fenced: what the new primary lacks can no longer appear.
  if (facts.samePrimary && !facts.oldBackendTerminated && (flight.keyed || flight.fence?.xid != null)) {
    if (flight.keyed) return { kind: 'ask', question: 'terminate-old-backend' };
    if (facts.xactStatus === undefined) return { kind: 'ask', question: 'xact-status' };
    if (facts.xactStatus === 'in progress') return { kind: 'ask', question: 'terminate-old-backend' };
  }
  if (flight.keyed) {
    if (!facts.samePrimary && facts.promotedAtLsn === null) {
      return verdict('unknown', 'the primary changed but its promotion LSN is not known');
    }
    if (facts.keyRow === undefined) return { kind: 'ask', question: 'key-row' };
    return facts.keyRow === 'present'
      ? committedOn(facts, 'the key row, committed with the work, is on the primary')
      : verdict('not-committed', 'the key row, committed with the work, is not on the primary');
  }
  if (flight.stage === 'unfenced' || flight.fence === null) {
    return verdict('unknown', 'the commit was forwarded without a fence');
  }
  if (flight.fence.xid === null) {
    return verdict('committed', 'the transaction wrote nothing, so there was nothing to lose');
  }
  if (!facts.samePrimary) {
    const s = facts.promotedAtLsn;
    if (s === null) return verdict('unknown', 'the primary changed but its promotion LSN is not known');
    if (flight.fence.insertLsn > s) {
      return verdict('not-committed', `the commit record lies after the promoted backup's final LSN S`);
    }
  }
  if (facts.xactStatus === undefined) return { kind: 'ask', question: 'xact-status' };
  switch (facts.xactStatus) {
    case 'committed':
      return committedOn(facts, 'pg_xact_status says committed');
    case 'aborted':
      return verdict('not-committed', 'pg_xact_status says aborted');
    case 'in progress':
      return verdict('unknown', 'the transaction is still in progress (prepared?)');
    default:
      return verdict('unknown', 'the transaction status is no longer known');
  }
}

/**
 * Committed on the server we reached. On the same primary the commit's wait for
 * synchronous replication may have been cut short by the loss: it is acknowledged
 * only once the synchronous standbys flushed it, else a failover could still lose
 * it (then its fate is unknown to the client: 08007). A promoted backup replayed it.
 */
function committedOn(facts: Facts, reason: string): Step {
  if (!facts.samePrimary) return verdict('committed', reason);
  if (facts.syncFlushed === undefined) return { kind: 'ask', question: 'sync-flushed' };
  return facts.syncFlushed
    ? verdict('committed', `${reason}, and the synchronous standbys flushed it`)
    : verdict(
        'unknown',
        `${reason}, but the synchronous standbys did not flush it in time: a failover could still lose it`,
      );
}

function verdict(v: Verdict, reason: string): Step {
  return { kind: 'verdict', verdict: v, reason };
}
