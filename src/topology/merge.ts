// How a follower (proxy-only sidecar) combines views that arrive from several
// channels in any order. Pure. The rule that keeps routing safe: a view of an
// older term never changes anything, and within one term the primary, once
// known, never changes (Raft elects at most one leader per term).
import type { ClusterView } from '../cluster/view.ts';

export type MergeOutcome = 'newer-term' | 'same-term-update' | 'stale' | 'conflict' | 'unchanged';

export interface MergeResult {
  view: ClusterView;
  outcome: MergeOutcome;
}

export function mergeView(current: ClusterView | null, incoming: ClusterView): MergeResult {
  if (current === null || incoming.term > current.term) return { view: incoming, outcome: 'newer-term' };
  if (incoming.term < current.term) return { view: current, outcome: 'stale' };
  if (current.primary !== null && incoming.primary !== current.primary) {
    // Same term, different primary: one of the two reports is wrong or outdated (a primary
    // that stepped down keeps its term until the next election). Keep routing as it is.
    return { view: current, outcome: incoming.primary === null ? 'stale' : 'conflict' };
  }
  if (sameView(current, incoming)) return { view: current, outcome: 'unchanged' };
  return {
    view: { ...incoming, promotedAtLsn: incoming.promotedAtLsn ?? current.promotedAtLsn },
    outcome: 'same-term-update',
  };
}

function sameView(a: ClusterView, b: ClusterView): boolean {
  return (
    a.term === b.term &&
    a.primary === b.primary &&
    a.promotedAtLsn === b.promotedAtLsn &&
    a.members.length === b.members.length &&
    a.members.every((m, i) => {
      const o = b.members[i]!;
      return (
        m.name === o.name &&
        m.role === o.role &&
        m.lsn === o.lsn &&
        m.lagBytes === o.lagBytes &&
        m.healthy === o.healthy &&
        m.postgres?.host === o.postgres?.host &&
        m.postgres?.port === o.postgres?.port
      );
    })
  );
}
