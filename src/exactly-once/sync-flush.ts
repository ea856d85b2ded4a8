// Has the synchronous standby flushed a commit? A commit found committed on the
// SAME primary after its connection was lost may never have finished its
// synchronous-replication wait (the wait was cut short by the loss, a cancel, or
// a terminate): it is durable locally and visible, but the next failover could
// lose it. The proxy acknowledges it only once enough synchronous standbys have
// flushed the primary's WAL past it, the same rule PostgreSQL's own wait applies
// (src/backend/replication/syncrep.c). Pure: the shell polls pg_stat_replication.

export interface StandbyFlush {
  /** pg_stat_replication.sync_state: sync, quorum, potential, async. */
  syncState: string;
  /** pg_stat_replication.flush_lsn; null while the standby reported none. */
  flushLsn: bigint | null;
}

/**
 * How many standbys must flush a commit under `synchronous_standby_names`:
 * `FIRST k (...)`, `ANY k (...)`, `k (...)`, or a bare list (= FIRST 1). 0 when
 * empty: commits do not wait (asynchronous, or degraded by policy).
 */
export function requiredSyncStandbys(names: string): number {
  const text = names.trim();
  if (text === '') return 0;
  const counted = /^(?:(?:first|any)\s+)?(\d+)\s*\(/i.exec(text);
  if (counted !== null) return Number(counted[1]);
  return 1;
}

/**
 * True when at least `required` standbys chosen as synchronous (sync_state sync,
 * or quorum under ANY) have flushed up to `targetLsn`. Under FIRST k exactly the k
 * standbys in state sync count; under ANY k every quorum member does.
 */
export function syncFlushed(targetLsn: bigint, required: number, standbys: readonly StandbyFlush[]): boolean {
  if (required <= 0) return true;
  const flushed = standbys.filter(
    (s) =>
      (s.syncState === 'sync' || s.syncState === 'quorum') && s.flushLsn !== null && s.flushLsn >= targetLsn,
  );
  return flushed.length >= required;
}
