import { hasQuorum } from './quorum.ts';
import type { NodeId } from './types.ts';

/** Rounds kept awaiting acks; older rounds cannot extend the lease anyway. */
const MAX_OPEN_ROUNDS = 32;

interface Round {
  startMs: number;
  acks: Set<NodeId>;
}

/**
 * Round-based leader lease (Raft thesis §6.4.1). The leader notes its local time
 * t0 when a heartbeat round starts; once a quorum acked that round, every voter of
 * that quorum refuses votes until E after it heard the round, so no other leader
 * can exist before t0 + L on the leader's clock, given L <= E(1−ρ)/(1+ρ).
 */
export class LeaseTracker {
  private readonly rounds = new Map<number, Round>();
  /** Round numbers never repeat, even across terms, so a late ack cannot be miscounted. */
  private nextRound = 1;
  private startMs: number | null = null;

  constructor(
    private readonly leaseMs: number,
    private readonly stopMarginMs: number,
  ) {}

  startRound(nowMs: number, self: NodeId): number {
    const round = this.nextRound++;
    this.rounds.set(round, { startMs: nowMs, acks: new Set([self]) });
    if (this.rounds.size > MAX_OPEN_ROUNDS) {
      const oldest = this.rounds.keys().next().value as number;
      this.rounds.delete(oldest);
    }
    return round;
  }

  /** Records `from`'s ack of `round`; `quorum` is the current voters + witnesses. */
  ack(round: number, from: NodeId, quorum: readonly NodeId[]): void {
    const entry = this.rounds.get(round);
    if (entry === undefined) return;
    entry.acks.add(from);
    this.evaluate(round, quorum);
  }

  /** Re-evaluates open rounds, e.g. after the quorum shrank. */
  reevaluate(quorum: readonly NodeId[]): void {
    for (const round of [...this.rounds.keys()]) this.evaluate(round, quorum);
  }

  private evaluate(round: number, quorum: readonly NodeId[]): void {
    const entry = this.rounds.get(round);
    if (entry === undefined || !hasQuorum(quorum, (id) => entry.acks.has(id))) return;
    if (this.startMs === null || entry.startMs > this.startMs) this.startMs = entry.startMs;
    for (const r of [...this.rounds.keys()]) if (r <= round) this.rounds.delete(r);
  }

  /** Voids the lease at once (step down, higher term, leadership transfer). */
  reset(): void {
    this.rounds.clear();
    this.startMs = null;
  }

  /** End of the lease itself on the leader's clock, or null. */
  expiresAtMs(): number | null {
    return this.startMs === null ? null : this.startMs + this.leaseMs;
  }

  /** End of the usable lease: the stop margin before its expiry. */
  validUntilMs(): number | null {
    const expires = this.expiresAtMs();
    return expires === null ? null : expires - this.stopMarginMs;
  }
}
