import type { Entry, Snapshot } from './types.ts';

/**
 * The in-memory Raft log: a snapshot prefix (index, term) followed by entries.
 * The driver's storage mirrors it; `persisted` is the last index known durable.
 */
export class RaftLog {
  snapshotIndex: number;
  snapshotTerm: number;
  /** entries[i].index === snapshotIndex + 1 + i */
  private entries: Entry[];
  committed: number;
  applied: number;
  /** Last index durable in storage; entries after it go into the next Ready. */
  persisted: number;
  /** Latest snapshot known, sent to followers that lag behind the log's start. */
  snapshot: Snapshot | undefined;
  /** A snapshot received from the leader that the driver has not persisted yet. */
  pendingSnapshot: Snapshot | undefined;

  constructor(snapshot: Snapshot | undefined, entries: Entry[], commit: number) {
    this.snapshot = snapshot;
    this.snapshotIndex = snapshot?.metadata.index ?? 0;
    this.snapshotTerm = snapshot?.metadata.term ?? 0;
    this.entries = [];
    for (const entry of entries) {
      if (entry.index <= this.snapshotIndex) continue;
      if (entry.index !== this.lastIndex() + 1) {
        throw new Error(`raft: storage returned a gap in the log at index ${entry.index}`);
      }
      this.entries.push(entry);
    }
    this.persisted = this.lastIndex();
    if (commit > this.lastIndex()) {
      throw new Error(
        `raft: stored commit ${commit} is past the stored log's last index ${this.lastIndex()}`,
      );
    }
    this.committed = Math.max(commit, this.snapshotIndex);
    this.applied = this.snapshotIndex;
  }

  firstIndex(): number {
    return this.snapshotIndex + 1;
  }

  lastIndex(): number {
    return this.snapshotIndex + this.entries.length;
  }

  lastTerm(): number {
    return this.term(this.lastIndex())!;
  }

  /** Term of the entry at `index`; undefined if compacted away or beyond the log. */
  term(index: number): number | undefined {
    if (index === this.snapshotIndex) return this.snapshotTerm;
    if (index < this.snapshotIndex || index > this.lastIndex()) return undefined;
    return this.entries[index - this.snapshotIndex - 1]!.term;
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Election restriction (paper §5.4.1): is (lastIndex, lastTerm) at least as up to date as ours? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /** Entries [lo, hi); lo must not be compacted. */
  slice(lo: number, hi: number): Entry[] {
    if (lo > hi) return [];
    if (lo <= this.snapshotIndex) throw new Error(`raft: slice from compacted index ${lo}`);
    if (hi > this.lastIndex() + 1) throw new Error(`raft: slice past the last index (${hi})`);
    return this.entries.slice(lo - this.snapshotIndex - 1, hi - this.snapshotIndex - 1);
  }

  /** Leader append of new entries right after the last one. */
  append(entries: Entry[]): void {
    for (const entry of entries) {
      if (entry.index !== this.lastIndex() + 1)
        throw new Error(`raft: append out of order at ${entry.index}`);
      this.entries.push(entry);
    }
  }

  /**
   * Follower append (paper §5.3): if our log holds (prevIndex, prevTerm), drop the
   * first conflicting suffix, append what is new, and commit up to
   * min(leaderCommit, last index verified by this message). Returns that last
   * verified index, or null when prevIndex/prevTerm does not match.
   */
  maybeAppend(prevIndex: number, prevTerm: number, leaderCommit: number, entries: Entry[]): number | null {
    if (!this.matchTerm(prevIndex, prevTerm)) return null;
    const lastNew = prevIndex + entries.length;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      if (entry.index !== prevIndex + 1 + i) throw new Error('raft: MsgApp entries are not contiguous');
      if (this.matchTerm(entry.index, entry.term)) continue;
      if (entry.index <= this.committed) {
        throw new Error(`raft: conflicting entry ${entry.index} at or below commit ${this.committed}`);
      }
      this.truncateFrom(entry.index);
      this.append(entries.slice(i));
      break;
    }
    this.commitTo(Math.min(leaderCommit, lastNew));
    return lastNew;
  }

  private truncateFrom(index: number): void {
    this.entries.length = index - this.snapshotIndex - 1;
    if (this.persisted >= index) this.persisted = index - 1;
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    if (index > this.lastIndex())
      throw new Error(`raft: commit ${index} past last index ${this.lastIndex()}`);
    this.committed = index;
  }

  /** Entries appended since the last persisted index. */
  unstableEntries(): Entry[] {
    return this.entries.slice(this.persisted - this.snapshotIndex);
  }

  /** Committed entries not yet applied. */
  nextCommittedEntries(): Entry[] {
    return this.slice(this.applied + 1, this.committed + 1);
  }

  /** Replaces the whole log by a snapshot received from the leader. */
  restore(snapshot: Snapshot): void {
    const { index, term } = snapshot.metadata;
    if (index <= this.committed) throw new Error('raft: restoring a snapshot at or below commit');
    this.entries = [];
    this.snapshotIndex = index;
    this.snapshotTerm = term;
    this.snapshot = snapshot;
    this.pendingSnapshot = snapshot;
    this.committed = index;
    this.applied = index;
    this.persisted = index;
  }

  /** Drops entries up to `snapshot.metadata.index`, which must be applied. */
  compact(snapshot: Snapshot): void {
    const { index, term } = snapshot.metadata;
    if (index > this.applied) throw new Error(`raft: compacting past applied (${index} > ${this.applied})`);
    if (index <= this.snapshotIndex) return;
    if (this.term(index) !== term) throw new Error('raft: snapshot term does not match the log');
    this.entries = this.entries.slice(index - this.snapshotIndex);
    this.snapshotIndex = index;
    this.snapshotTerm = term;
    this.snapshot = snapshot;
  }
}
