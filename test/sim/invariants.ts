// Global safety invariants, checked by the simulator after every event (reference
// §2): election safety, no double vote, leader append-only, log matching, leader
// completeness, state-machine safety, term and commit monotonic, one lease.
import type { NodeId } from '../../src/raft/core/types.ts';

export class InvariantViolation extends Error {}

function fail(message: string): never {
  throw new InvariantViolation(message);
}

export class Invariants {
  private readonly leaderOfTerm = new Map<number, NodeId>();
  /** `${node}:${term}` → vote, surviving crashes: a second, different vote was not persisted. */
  private readonly votes = new Map<string, NodeId>();
  /** `${index}:${term}` → hash chain of the log up to that entry. */
  private readonly chains = new Map<string, number>();
  /** index → hash chain of the committed log prefix. */
  private readonly committed = new Map<number, number>();
  /** index → lowest term in which some node reported it committed. */
  private readonly commitTerm = new Map<number, number>();
  private maxCommitted = 0;
  /** index → hash chain of the entry some state machine applied there. */
  private readonly applied = new Map<number, number>();

  recordLeader(node: NodeId, term: number): void {
    const existing = this.leaderOfTerm.get(term);
    if (existing !== undefined && existing !== node) {
      fail(`election safety: ${existing} and ${node} both led term ${term}`);
    }
    this.leaderOfTerm.set(term, node);
  }

  recordVote(node: NodeId, term: number, vote: NodeId): void {
    if (vote === '') return;
    const key = `${node}:${term}`;
    const existing = this.votes.get(key);
    if (existing !== undefined && existing !== vote) {
      fail(`vote persistence: ${node} voted for ${existing} and then ${vote} in term ${term}`);
    }
    this.votes.set(key, vote);
  }

  /** Log matching: the same (index, term) anywhere implies the same log prefix. */
  recordEntry(node: NodeId, index: number, term: number, chain: number): void {
    const key = `${index}:${term}`;
    const existing = this.chains.get(key);
    if (existing !== undefined && existing !== chain) {
      fail(`log matching: ${node} holds entry ${term}/${index} with a different log prefix`);
    }
    this.chains.set(key, chain);
  }

  chainOf(index: number, term: number): number | undefined {
    return this.chains.get(`${index}:${term}`);
  }

  recordCommit(node: NodeId, index: number, chain: number, term: number): void {
    const existing = this.committed.get(index);
    if (existing !== undefined && existing !== chain) {
      fail(`commit safety: ${node} committed a different entry at index ${index}`);
    }
    this.committed.set(index, chain);
    this.commitTerm.set(index, Math.min(term, this.commitTerm.get(index) ?? term));
    if (index > this.maxCommitted) this.maxCommitted = index;
  }

  /**
   * Leader completeness (paper §5.4): the leader of `term` holds every entry
   * committed in an earlier term. (A stale leader of an older term may lack
   * newer entries; it cannot commit anything with them missing.)
   */
  checkLeaderComplete(
    node: NodeId,
    term: number,
    chainAt: (index: number) => number | undefined,
    baseIndex: number,
  ): void {
    let c = 0;
    for (const [index, t] of this.commitTerm) if (t < term && index > c) c = index;
    if (c <= baseIndex) return;
    const chain = chainAt(c);
    if (chain === undefined || chain !== this.committed.get(c)) {
      fail(`leader completeness: new leader ${node} lacks committed entry ${c}`);
    }
  }

  recordApplied(node: NodeId, index: number, chain: number): void {
    const existing = this.applied.get(index);
    if (existing !== undefined && existing !== chain) {
      fail(`state machine safety: ${node} applied a different entry at index ${index}`);
    }
    this.applied.set(index, chain);
  }

  committedCount(): number {
    return this.maxCommitted;
  }
}

export { fail as invariantFailure };
