// The cluster view: what the applied Raft state says about who may write.
// Proxies and the API read it; only the cluster state machine writes it.

export type NodeRole = 'primary' | 'backup' | 'witness' | 'down' | 'unknown';

export interface Endpoint {
  host: string;
  port: number;
}

export interface MemberView {
  name: string;
  role: NodeRole;
  /** The member's PostgreSQL, where the proxy's backend connections go. */
  postgres: Endpoint | null;
  /** Last reported replay LSN (backups) or current WAL LSN (primary). */
  lsn: bigint | null;
  /** Bytes behind the primary, as last reported; null when unknown. */
  lagBytes: number | null;
  healthy: boolean;
}

export interface ClusterView {
  /** Raft term = fencing epoch. Strictly increases across failovers. */
  term: number;
  /** The member that may accept writes in this term, if any is known and writable. */
  primary: string | null;
  /** Final replay LSN S of the promoted backup for this term (null before any promotion). */
  promotedAtLsn: bigint | null;
  members: MemberView[];
}

/** Where a proxy learns the topology from: a fixed config, the local Raft state, Redis, or polling. */
export interface TopologySource {
  current(): ClusterView;
  /** Called on every change; returns an unsubscribe function. */
  subscribe(listener: (view: ClusterView) => void): () => void;
  /**
   * Whether a transaction already open on `endpoint` under `term` may go on: the
   * endpoint is the primary of `term` and this source still holds evidence that
   * `term` is current (the lease on the primary itself, contact with the leader
   * elsewhere), also while new transactions are held (a switchover drains them).
   * A source without this method fences by term only: open transactions go on.
   */
  mayContinue?(term: number, endpoint: Endpoint): boolean;
}

/** A topology source that never changes: the fixed primary before failover exists, and tests. */
export class StaticTopology implements TopologySource {
  private view: ClusterView;
  private readonly listeners = new Set<(view: ClusterView) => void>();

  constructor(view: ClusterView) {
    this.view = view;
  }

  current(): ClusterView {
    return this.view;
  }

  subscribe(listener: (view: ClusterView) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Replaces the view (tests and config reloads); listeners hear of it synchronously. */
  set(view: ClusterView): void {
    this.view = view;
    for (const listener of this.listeners) listener(view);
  }
}

export function primaryEndpoint(view: ClusterView): Endpoint | null {
  if (view.primary === null) return null;
  return view.members.find((m) => m.name === view.primary)?.postgres ?? null;
}
