// The TopologySource the proxy reads on a member or witness: the applied cluster
// state, narrowed by what this sidecar knows right now. `primary` is null (the
// proxy holds new transactions) while no promotion of the current term is
// applied, while a switchover is in progress, while this sidecar has not heard
// from a leader within the lease, and, on the primary itself, while its lease
// gate is shut.
import type { ClusterState } from './state-machine.ts';
import { clusterViewOf } from './state-machine.ts';
import type { ClusterView, Endpoint, TopologySource } from './view.ts';

export interface LocalKnowledge {
  state: ClusterState;
  currentTerm: number;
  self: string;
  isLeader: boolean;
  /** Lease gate verdict on the leader; ignored elsewhere. */
  leaseGateOpen: boolean;
  /** A follower heard from the current leader within the lease. */
  leaderHeardRecently: boolean;
  /** Local monotonic ms after which this knowledge may be stale (the lease or the leader contact runs out). */
  viewValidUntilMs: number;
}

export class RaftTopology implements TopologySource {
  private key = '';
  private readonly listeners = new Set<(view: ClusterView) => void>();

  private cached: ClusterView | null = null;
  private cachedUntilMs = Number.NEGATIVE_INFINITY;
  /** The primary this knowledge vouches for (see vouchedPrimary), computed with `cached`. */
  private cachedVouched: string | null = null;

  constructor(
    private readonly knowledge: () => LocalKnowledge,
    private readonly clock: () => number,
  ) {}

  static compute(k: LocalKnowledge): ClusterView {
    const primaryIsSelf = k.state.primary === k.self;
    const routable = primaryIsSelf ? k.isLeader && k.leaseGateOpen : k.leaderHeardRecently && !k.isLeader;
    return clusterViewOf(k.state, { currentTerm: k.currentTerm, primaryRoutable: routable });
  }

  /**
   * The primary whose open transactions may go on: the promoted primary of the
   * current term while the evidence that makes it routable holds (its lease on
   * itself, leader contact elsewhere). Unlike the view's `primary`, a switchover in
   * progress does not clear it: the switchover holds new transactions and lets the
   * running ones finish. Null when the term is not vouched for: a sidecar woken
   * after a freeze longer than its lease, or one cut off from the leader.
   */
  static vouchedPrimary(k: LocalKnowledge): string | null {
    const primary = k.state.primary;
    if (primary === null || k.state.promotedTerm !== k.currentTerm) return null;
    const routable =
      primary === k.self ? k.isLeader && k.leaseGateOpen : k.leaderHeardRecently && !k.isLeader;
    return routable ? primary : null;
  }

  /**
   * The view as of the last refresh, recomputed when a lease it relied on has run
   * out since: the proxy asks per transaction and must never route on an expired
   * lease, while recomputing every time would cost the event loop.
   */
  current(): ClusterView {
    if (this.cached === null || this.clock() >= this.cachedUntilMs) this.recompute();
    return this.cached!;
  }

  private recompute(): void {
    const knowledge = this.knowledge();
    this.cached = RaftTopology.compute(knowledge);
    this.cachedVouched = RaftTopology.vouchedPrimary(knowledge);
    this.cachedUntilMs = knowledge.viewValidUntilMs;
  }

  mayContinue(term: number, endpoint: Endpoint): boolean {
    const view = this.current();
    if (this.cachedVouched === null || term !== view.term) return false;
    const at = view.members.find((m) => m.name === this.cachedVouched)?.postgres;
    return at != null && at.host === endpoint.host && at.port === endpoint.port;
  }

  subscribe(listener: (view: ClusterView) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Recomputes the view; listeners hear of it only when something changed. */
  refresh(): ClusterView {
    this.recompute();
    const view = this.cached!;
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
