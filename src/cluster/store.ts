// The applied cluster state of one sidecar: committed Raft entries go in, the
// state and what each entry did come out. The only mutable holder of ClusterState.
import { EventEmitter } from 'node:events';
import type { MemberSpec } from './commands.ts';
import {
  type ApplyOutcome,
  applyEntry,
  type ClusterState,
  initialClusterState,
  restoreClusterState,
  snapshotClusterState,
} from './state-machine.ts';

/** The shape of a Raft log entry this store consumes (src/raft/core/types.ts `Entry`). */
export interface LogEntry {
  index: number;
  term: number;
  type: 'normal' | 'confChange' | 'noop';
  data: Uint8Array;
}

export interface StoreEvents {
  applied: [{ index: number; term: number; outcome: ApplyOutcome; state: ClusterState }];
  restored: [ClusterState];
}

const EMPTY = new Uint8Array(0);

export class ClusterStore extends EventEmitter<StoreEvents> {
  private current: ClusterState;

  constructor(members: readonly MemberSpec[]) {
    super();
    this.current = initialClusterState(members);
  }

  get state(): ClusterState {
    return this.current;
  }

  /** Applies committed entries in order; membership entries only advance the applied index here. */
  apply(entries: readonly LogEntry[]): void {
    for (const entry of entries) {
      if (entry.index <= this.current.appliedIndex) continue;
      const data = entry.type === 'normal' ? entry.data : EMPTY;
      const { state, outcome } = applyEntry(this.current, { index: entry.index, term: entry.term, data });
      this.current = state;
      this.emit('applied', { index: entry.index, term: entry.term, outcome, state });
    }
  }

  snapshot(): Uint8Array {
    return snapshotClusterState(this.current);
  }

  restore(data: Uint8Array): void {
    this.current = restoreClusterState(data);
    this.emit('restored', this.current);
  }
}
