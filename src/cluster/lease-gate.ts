// The lease gate: the one predicate that decides whether this node may route
// writes to its own PostgreSQL. All four conditions, checked on every question,
// because any of them can turn false between two Raft ticks.

export interface LeaseGateInput {
  isLeader: boolean;
  currentTerm: number;
  /** Term of the last applied promotion, and whom it named. */
  promotedTerm: number;
  appliedPrimary: string | null;
  self: string;
  /** Monotonic ms; leaseEndMs is null when the Raft core holds no lease. */
  nowMs: number;
  leaseEndMs: number | null;
  /** Local fencing latency δ: the write must be stopped this long before the lease ends. */
  stopMarginMs: number;
  /** The last probe found PostgreSQL up and out of recovery. */
  pgWritable: boolean;
}

export type LeaseGateVerdict =
  | { open: true; closesAtMs: number }
  | {
      open: false;
      reason: 'not-leader' | 'not-promoted' | 'lease-expired' | 'postgres-not-writable';
    };

export function leaseGate(input: LeaseGateInput): LeaseGateVerdict {
  if (!input.isLeader) return { open: false, reason: 'not-leader' };
  if (input.promotedTerm !== input.currentTerm || input.appliedPrimary !== input.self) {
    return { open: false, reason: 'not-promoted' };
  }
  if (input.leaseEndMs === null || input.nowMs + input.stopMarginMs >= input.leaseEndMs) {
    return { open: false, reason: 'lease-expired' };
  }
  if (!input.pgWritable) return { open: false, reason: 'postgres-not-writable' };
  return { open: true, closesAtMs: input.leaseEndMs - input.stopMarginMs };
}
