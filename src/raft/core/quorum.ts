import type { NodeId } from './types.ts';

/** Size of a majority of `memberCount` voters. */
export function majority(memberCount: number): number {
  return Math.floor(memberCount / 2) + 1;
}

/** The highest index that a majority of `members` has matched. */
export function quorumMatchIndex(members: readonly NodeId[], matchOf: (id: NodeId) => number): number {
  if (members.length === 0) throw new Error('raft: quorum over an empty configuration');
  const matches = members.map(matchOf).sort((a, b) => b - a);
  return matches[majority(members.length) - 1]!;
}

export type VoteOutcome = 'won' | 'lost' | 'pending';

/** Tallies granted and rejected votes of `members` (others' votes are ignored). */
export function tallyVotes(members: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteOutcome {
  let granted = 0;
  let rejected = 0;
  for (const id of members) {
    const vote = votes.get(id);
    if (vote === true) granted++;
    else if (vote === false) rejected++;
  }
  const needed = majority(members.length);
  if (granted >= needed) return 'won';
  if (members.length - rejected < needed) return 'lost';
  return 'pending';
}

/** Whether `present` holds a majority of `members`. */
export function hasQuorum(members: readonly NodeId[], present: (id: NodeId) => boolean): boolean {
  let count = 0;
  for (const id of members) if (present(id)) count++;
  return count >= majority(members.length);
}
