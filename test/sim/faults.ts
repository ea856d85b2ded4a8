// The fault schedule of one run: generated up front from the seed's fault stream,
// so that ddmin can drop faults without reshuffling anything else.
import type { SeededRng } from '../../src/raft/core/rng.ts';
import type { NodeId } from '../../src/raft/core/types.ts';

export type Fault =
  | { kind: 'partition'; atMs: number; durationMs: number; groups: NodeId[][] }
  | { kind: 'oneWay'; atMs: number; durationMs: number; from: NodeId; to: NodeId }
  | { kind: 'clog'; atMs: number; durationMs: number; from: NodeId; to: NodeId; extraDelayMs: number }
  | { kind: 'pause'; atMs: number; durationMs: number; node: NodeId }
  | { kind: 'crash'; atMs: number; durationMs: number; node: NodeId; tornTail: boolean };

/** Stands for "whoever leads when the fault starts": the faults that hurt leases target leaders. */
export const LEADER = '@leader';
/** The first and second non-leader nodes (in id order) when the fault starts. */
export const FOLLOWER_A = '@followerA';
export const FOLLOWER_B = '@followerB';

export type FaultKind = Fault['kind'];
export const FAULT_KINDS: readonly FaultKind[] = ['partition', 'oneWay', 'clog', 'pause', 'crash'];

/** Swarm testing: each seed enables a random subset of faults at random rates. */
export interface Swarm {
  enabled: FaultKind[];
  faultCount: number;
  lossRate: number;
  dupRate: number;
  minDelayMs: number;
  meanExtraDelayMs: number;
  compactEvery: number;
}

export function pickSwarm(rng: SeededRng): Swarm {
  const enabled = FAULT_KINDS.filter(() => rng.chance(0.6));
  return {
    enabled,
    faultCount: enabled.length === 0 ? 0 : 2 + rng.intBelow(24),
    lossRate: rng.chance(0.5) ? rng.between(0, 0.15) : 0,
    dupRate: rng.chance(0.4) ? rng.between(0, 0.1) : 0,
    minDelayMs: rng.between(0.2, 2),
    meanExtraDelayMs: rng.chance(0.3) ? rng.between(5, 40) : rng.between(0.5, 5),
    compactEvery: rng.chance(0.5) ? 4 + rng.intBelow(20) : 0,
  };
}

export function generateFaults(
  rng: SeededRng,
  swarm: Swarm,
  ids: NodeId[],
  fromMs: number,
  toMs: number,
): Fault[] {
  const faults: Fault[] = [];
  const pickNode = () => (rng.chance(0.5) ? LEADER : ids[rng.intBelow(ids.length)]!);
  const pickOther = (not: NodeId) => {
    const others = ids.filter((id) => id !== not);
    return others[rng.intBelow(others.length)]!;
  };
  for (let i = 0; i < swarm.faultCount; i++) {
    const kind = swarm.enabled[rng.intBelow(swarm.enabled.length)]!;
    const atMs = Math.round(rng.between(fromMs, toMs));
    const durationMs = Math.round(rng.chance(0.3) ? rng.between(2000, 5000) : rng.between(50, 2000));
    if (kind === 'partition') {
      const shuffled = [...ids];
      for (let j = shuffled.length - 1; j > 0; j--) {
        const k = rng.intBelow(j + 1);
        [shuffled[j], shuffled[k]] = [shuffled[k]!, shuffled[j]!];
      }
      const cutAt = 1 + rng.intBelow(ids.length - 1);
      faults.push({ kind, atMs, durationMs, groups: [shuffled.slice(0, cutAt), shuffled.slice(cutAt)] });
    } else if (kind === 'oneWay' || kind === 'clog') {
      const from = pickNode();
      const to = pickOther(from);
      if (kind === 'oneWay') faults.push({ kind, atMs, durationMs, from, to });
      else faults.push({ kind, atMs, durationMs, from, to, extraDelayMs: Math.round(rng.between(50, 1500)) });
    } else if (kind === 'pause') {
      faults.push({ kind, atMs, durationMs, node: pickNode() });
    } else {
      // A quick restart is what tests the boot-time vote refusal: the node forgot when it last heard a leader.
      const downMs = rng.chance(0.4) ? Math.round(rng.between(5, 300)) : durationMs;
      faults.push({ kind, atMs, durationMs: downMs, node: pickNode(), tornTail: rng.chance(0.5) });
    }
  }
  return faults.sort((a, b) => a.atMs - b.atMs);
}

/**
 * The lease attack: node A and the leader stop hearing each other and A campaigns
 * after its election timeout. The simulator reacts to A's first PreVote: node B,
 * which acked the leader's last round, crashes and restarts before the PreVote
 * reaches it, and stops hearing the leader. Only B's vote refusal after boot then
 * keeps A from winning while the leader's lease is still valid.
 */
export function leaseAttackFaults(rng: SeededRng): Fault[] {
  return [
    {
      kind: 'oneWay',
      atMs: Math.round(rng.between(2000, 3000)),
      durationMs: 4000,
      from: LEADER,
      to: FOLLOWER_A,
    },
  ];
}

export function describeFault(f: Fault): string {
  const span = `@${f.atMs}ms for ${f.durationMs}ms`;
  switch (f.kind) {
    case 'partition':
      return `partition ${f.groups.map((g) => g.join(',')).join(' | ')} ${span}`;
    case 'oneWay':
      return `drop ${f.from}->${f.to} ${span}`;
    case 'clog':
      return `clog ${f.from}->${f.to} +${f.extraDelayMs}ms ${span}`;
    case 'pause':
      return `pause ${f.node} ${span}`;
    case 'crash':
      return `crash ${f.node}${f.tornTail ? ' (torn tail)' : ''} ${span}`;
  }
}
