// The TopologySource the proxy reads on a member or witness: the applied cluster
// state, narrowed by what this sidecar knows right now. `primary` is null (the
// proxy holds new transactions) while no promotion of the current term is
// applied, while a switchover is in progress, while this sidecar has not heard
// from a leader within the lease, and, on the primary itself, while its lease
// gate is shut.
import type { ClusterState } from './state-machine.ts';
import { clusterViewOf } from './state-machine.ts';
import type { ClusterView, TopologySource } from './view.ts';

export interface LocalKnowledge {
  state: ClusterState;
  currentTerm: number;
  self: string;
  isLeader: boolean;
  /** Lease gate verdict on the leader; ignored elsewhere. */
  leaseGateOpen: boolean;
  /** A follower heard from the current leader within the lease. */
  leaderHeardRecently: boolean;
}

export class RaftTopology implements TopologySource {
  private key = '';
  private readonly listeners = new Set<(view: ClusterView) => void>();

  /** `knowledge` is read on every question: the lease can run out between two refreshes. */
  constructor(private readonly knowledge: () => LocalKnowledge) {}

  static compute(k: LocalKnowledge): ClusterView {
    const primaryIsSelf = k.state.primary === k.self;
    const routable = primaryIsSelf ? k.isLeader && k.leaseGateOpen : k.leaderHeardRecently && !k.isLeader;
    return clusterViewOf(k.state, { currentTerm: k.currentTerm, primaryRoutable: routable });
  }

  current(): ClusterView {
    return RaftTopology.compute(this.knowledge());
  }

  subscribe(listener: (view: ClusterView) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Recomputes the view; listeners hear of it only when something changed. */
  refresh(): ClusterView {
    const view = this.current();
    const key = viewKey(view);
    if (key === this.key) return view;
    this.key = key;
    for (const listener of this.listeners) listener(view);
    return view;
  }
}

function viewKey(view: ClusterView): string {
  return JSON.stringify(view, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
}
