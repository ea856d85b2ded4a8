import type { ProgressState, ProgressStatus } from './types.ts';

/**
 * The leader's view of one follower (etcd-io/raft tracker): probe sends one MsgApp
 * at a time until the follower's match is known; replicate pipelines up to
 * `maxInflight` MsgApp; snapshot waits for an InstallSnapshot to be acknowledged.
 */
export class Progress {
  match = 0;
  state: ProgressState = 'probe';
  /** Probe state: a MsgApp is out; wait for its reply (or a heartbeat reply). */
  probeSent = false;
  pendingSnapshot = 0;
  /** Heard from since the last CheckQuorum round. */
  recentActive = false;
  /** Last index of each unacknowledged MsgApp, ascending. */
  private inflights: number[] = [];

  constructor(
    public next: number,
    private readonly maxInflight: number,
  ) {}

  becomeProbe(): void {
    this.next =
      this.state === 'snapshot' ? Math.max(this.match + 1, this.pendingSnapshot + 1) : this.match + 1;
    this.state = 'probe';
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.inflights = [];
  }

  becomeReplicate(): void {
    this.state = 'replicate';
    this.next = this.match + 1;
    this.pendingSnapshot = 0;
    this.inflights = [];
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.state = 'snapshot';
    this.pendingSnapshot = snapshotIndex;
    this.inflights = [];
  }

  /** An accepted append up to `index`; false if the reply is stale (bug 5: never regress). */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (index > this.match) {
      this.match = index;
      this.probeSent = false;
      updated = true;
    }
    if (index + 1 > this.next) this.next = index + 1;
    return updated;
  }

  /** A rejected append of prevIndex `rejected`; false if the rejection is stale. */
  maybeDecrTo(rejected: number, followerLastIndex: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, followerLastIndex + 1), this.match + 1, 1);
    this.probeSent = false;
    return true;
  }

  isPaused(): boolean {
    if (this.state === 'probe') return this.probeSent;
    if (this.state === 'replicate') return this.inflights.length >= this.maxInflight;
    return true;
  }

  inflightFull(): boolean {
    return this.inflights.length >= this.maxInflight;
  }

  /** Records a MsgApp whose last entry is `lastIndex` (prevIndex if empty). */
  sentAppend(lastIndex: number, entryCount: number): void {
    if (this.state === 'replicate') {
      if (entryCount > 0) {
        this.next = lastIndex + 1;
        this.inflights.push(lastIndex);
      }
    } else if (this.state === 'probe') {
      this.probeSent = true;
    } else {
      throw new Error('raft: sending an append to a follower in the snapshot state');
    }
  }

  /** Frees inflight slots for appends up to `index`. */
  freeUpTo(index: number): void {
    let i = 0;
    while (i < this.inflights.length && this.inflights[i]! <= index) i++;
    if (i > 0) this.inflights.splice(0, i);
  }

  status(): ProgressStatus {
    return {
      match: this.match,
      next: this.next,
      state: this.state,
      recentActive: this.recentActive,
      inflight: this.inflights.length,
    };
  }
}
