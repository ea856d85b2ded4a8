// What the admin API reads from and asks of the sidecar it runs in. The cluster
// controller implements both; tests use small fakes.
import type { MemberSpec } from '../../cluster/commands.ts';
import type { NodeRole, TopologySource } from '../../cluster/view.ts';

/** This sidecar's own answer to the Patroni-style health questions. */
export interface LocalHealth {
  node: string;
  kind: 'member' | 'witness' | 'proxy';
  role: NodeRole;
  term: number;
  /** The lease gate is open: this node's PostgreSQL takes writes right now. */
  writable: boolean;
  pgHealthy: boolean;
  /** A backup whose walreceiver streams from the current primary. */
  streaming: boolean;
  /** Replay lag behind the primary in bytes (backups); null when unknown. */
  lagBytes: number | null;
  /** max(receive, replay) LSN on a backup, current WAL LSN on a primary, as a decimal string. */
  lsn: string | null;
  /** The failover policy lets this member campaign (what the leader needs to pick a transfer target). */
  campaignable: boolean;
  /** Term of the switchover intent this sidecar applied (its proxy holds new transactions), else null. */
  switchoverHold?: number | null;
  /** Write sessions of this sidecar's proxy busy on a backend (a switchover drains them); null without a proxy. */
  writesInFlight?: number | null;
  /**
   * The fitness (decimal LSN) this member's Raft node sends with its vote requests
   * and compares candidates against. A switchover hands leadership over only once
   * the target's covers the final WAL: a stale one loses the election it was given.
   */
  voteFitness?: string | null;
}

export interface ClusterReader {
  health(): LocalHealth;
  /** The status JSON of `pgward status --json` plus the cluster view (GET /cluster). */
  status(): Record<string, unknown>;
  /** Term changes are what long-polling proxies wait for. */
  topology: TopologySource;
}

export type AdminResult =
  | { ok: true; message: string; detail?: Record<string, unknown> }
  | { ok: false; status: 400 | 404 | 409 | 503; message: string };

export interface ClusterAdmin {
  /** Planned: hold, drain, catch up, hand over. `to` defaults to the most advanced healthy backup. */
  switchover(request: { to?: string }): Promise<AdminResult>;
  /** Immediate hand-over without draining (the primary is unhealthy, or an operator insists). */
  failover(request: { to?: string }): Promise<AdminResult>;
  addMember(member: MemberSpec): Promise<AdminResult>;
  removeMember(name: string): Promise<AdminResult>;
}
