// The cluster state machine: folds committed Raft entries into the cluster view.
// Deterministic and IO-free: every sidecar applying the same log reaches the same
// state, which is what lets any member answer "who is primary in which term".
import { type ClusterCommand, type DurabilityMode, decodeCommand, type MemberSpec } from './commands.ts';
import type { ClusterView, MemberView } from './view.ts';

/** A committed Raft entry as the state machine sees it. Empty data is the leader's no-op. */
export interface CommittedEntry {
  index: number;
  term: number;
  data: Uint8Array;
}

export interface MemberState {
  spec: MemberSpec;
  lsn: bigint | null;
  healthy: boolean;
  streaming: boolean;
  /** Whether any health report was applied for it yet (else its role is unknown). */
  reported: boolean;
}

export interface ClusterState {
  appliedIndex: number;
  /** Term of the last applied Promoted; 0 before the first promotion. */
  promotedTerm: number;
  primary: string | null;
  /** S: the promoted node's final replay LSN. */
  promotedAtLsn: bigint | null;
  members: MemberState[];
  switchover: { term: number; from: string; to: string } | null;
  durability: { term: number; mode: DurabilityMode } | null;
  /** Promotions that changed the primary (switchovers included). */
  primaryChanges: number;
}

/** What applying one entry did, for the shell's structured log and metrics. */
export type ApplyOutcome =
  | { kind: 'applied'; command: ClusterCommand }
  | { kind: 'ignored'; command: ClusterCommand; reason: string };

export class InvariantViolation extends Error {
  override name = 'InvariantViolation';
}

export function initialClusterState(members: readonly MemberSpec[]): ClusterState {
  const names = new Set<string>();
  for (const member of members) {
    if (names.has(member.name)) throw new InvariantViolation(`member ${member.name} listed twice`);
    names.add(member.name);
  }
  return {
    appliedIndex: 0,
    promotedTerm: 0,
    primary: null,
    promotedAtLsn: null,
    members: sortMembers(members.map(freshMember)),
    switchover: null,
    durability: null,
    primaryChanges: 0,
  };
}

/** Applies one committed entry; returns the new state (the input is not mutated). */
export function applyEntry(
  state: ClusterState,
  entry: CommittedEntry,
): { state: ClusterState; outcome: ApplyOutcome } {
  if (entry.index <= state.appliedIndex) {
    throw new InvariantViolation(
      `entry ${entry.index} applied after ${state.appliedIndex}: the log went backwards`,
    );
  }
  const command: ClusterCommand = entry.data.length === 0 ? { type: 'noop' } : decodeCommand(entry.data);
  const next: ClusterState = { ...state, appliedIndex: entry.index };
  const reason = applyCommand(next, command, entry.term);
  return {
    state: next,
    outcome: reason === null ? { kind: 'applied', command } : { kind: 'ignored', command, reason },
  };
}

/** Mutates `state` (a fresh copy owned by applyEntry); returns why the command was ignored, or null. */
function applyCommand(state: ClusterState, command: ClusterCommand, entryTerm: number): string | null {
  switch (command.type) {
    case 'noop':
      return null;
    case 'promoted': {
      // Only the leader of `term` may promote in it, so its entry carries that term.
      if (command.term !== entryTerm)
        return `promoted for term ${command.term} in an entry of term ${entryTerm}`;
      if (command.term < state.promotedTerm) {
        return `promoted for term ${command.term} is older than term ${state.promotedTerm}`;
      }
      if (command.term === state.promotedTerm) {
        if (command.node !== state.primary) {
          throw new InvariantViolation(
            `two primaries in term ${command.term}: ${state.primary} and ${command.node} (election safety broken)`,
          );
        }
        return `duplicate promotion of ${command.node} in term ${command.term}`;
      }
      const member = state.members.find((m) => m.spec.name === command.node);
      if (member === undefined) return `promoted node ${command.node} is not a member`;
      if (member.spec.kind === 'witness') return `witness ${command.node} cannot be primary`;
      if (state.primary !== null && state.primary !== command.node) state.primaryChanges += 1;
      state.promotedTerm = command.term;
      state.primary = command.node;
      state.promotedAtLsn = command.lsn;
      state.switchover = null;
      state.durability = null;
      state.members = state.members.map((m) =>
        m.spec.name === command.node
          ? { ...m, lsn: command.lsn, healthy: true, streaming: false, reported: true }
          : m,
      );
      return null;
    }
    case 'health': {
      if (!state.members.some((m) => m.spec.name === command.node))
        return `health of unknown member ${command.node}`;
      state.members = state.members.map((m) =>
        m.spec.name === command.node
          ? { ...m, lsn: command.lsn, healthy: command.healthy, streaming: command.streaming, reported: true }
          : m,
      );
      return null;
    }
    case 'member-add': {
      if (state.members.some((m) => m.spec.name === command.member.name)) {
        return `member ${command.member.name} already exists`;
      }
      state.members = sortMembers([...state.members, freshMember(command.member)]);
      return null;
    }
    case 'member-remove': {
      if (!state.members.some((m) => m.spec.name === command.name))
        return `member ${command.name} does not exist`;
      if (command.name === state.primary) return `member ${command.name} is the primary: switch over first`;
      state.members = state.members.filter((m) => m.spec.name !== command.name);
      return null;
    }
    case 'switchover-intent': {
      if (command.term !== entryTerm)
        return `switchover for term ${command.term} in an entry of term ${entryTerm}`;
      if (command.term !== state.promotedTerm || command.from !== state.primary) {
        return `switchover from ${command.from} in term ${command.term} does not match primary ${state.primary} of term ${state.promotedTerm}`;
      }
      const target = state.members.find((m) => m.spec.name === command.to);
      if (target === undefined || target.spec.kind === 'witness' || command.to === command.from) {
        return `switchover target ${command.to} is not another database member`;
      }
      state.switchover = { term: command.term, from: command.from, to: command.to };
      return null;
    }
    case 'switchover-abort': {
      if (state.switchover === null || state.switchover.term !== command.term) {
        return `no switchover of term ${command.term} to abort`;
      }
      state.switchover = null;
      return null;
    }
    case 'durability': {
      if (command.term !== state.promotedTerm) {
        return `durability of term ${command.term} while the primary's term is ${state.promotedTerm}`;
      }
      state.durability = { term: command.term, mode: command.mode };
      return null;
    }
  }
}

export interface ViewContext {
  /** The Raft term this sidecar currently knows (may be ahead of the last promotion). */
  currentTerm: number;
  /**
   * Whether the applied primary may be routed to from here: false while the
   * promotion of the current term is not applied yet, while this proxy has not
   * heard from a leader within the lease, or (on the leader) while the lease gate is shut.
   */
  primaryRoutable: boolean;
  /** Where each member's PostgreSQL listens for backend connections (defaults to spec host:pgPort). */
  postgresHost?: (member: MemberSpec) => string;
}

/** The view proxies and the API read. `primary` is null whenever writes must be held. */
export function clusterViewOf(state: ClusterState, context: ViewContext): ClusterView {
  const term = Math.max(context.currentTerm, state.promotedTerm);
  const promotionCurrent = state.primary !== null && state.promotedTerm === term;
  const switchingOver = state.switchover !== null && state.switchover.term === term;
  const primary = promotionCurrent && context.primaryRoutable && !switchingOver ? state.primary : null;
  const primaryLsn = state.members.find((m) => m.spec.name === state.primary)?.lsn ?? null;
  const members: MemberView[] = state.members.map((m) => ({
    name: m.spec.name,
    role: roleOf(state, m, promotionCurrent),
    postgres:
      m.spec.pgPort === null
        ? null
        : { host: context.postgresHost?.(m.spec) ?? m.spec.host, port: m.spec.pgPort },
    lsn: m.lsn,
    lagBytes:
      m.spec.name === state.primary || primaryLsn === null || m.lsn === null
        ? null
        : lagOf(primaryLsn, m.lsn),
    healthy: m.healthy,
  }));
  return { term, primary, promotedAtLsn: state.promotedAtLsn, members };
}

function roleOf(state: ClusterState, member: MemberState, promotionCurrent: boolean): MemberView['role'] {
  if (member.spec.kind === 'witness') return 'witness';
  if (member.spec.name === state.primary) return promotionCurrent ? 'primary' : 'unknown';
  if (!member.reported) return 'unknown';
  return member.healthy ? 'backup' : 'down';
}

function lagOf(primaryLsn: bigint, memberLsn: bigint): number {
  return primaryLsn > memberLsn ? Number(primaryLsn - memberLsn) : 0;
}

function freshMember(spec: MemberSpec): MemberState {
  return { spec: { ...spec }, lsn: null, healthy: false, streaming: false, reported: false };
}

function sortMembers(members: MemberState[]): MemberState[] {
  return members.sort((a, b) => (a.spec.name < b.spec.name ? -1 : a.spec.name > b.spec.name ? 1 : 0));
}

const SNAPSHOT_VERSION = 1;

/** Serializes the state for a Raft snapshot (LSNs as decimal strings). */
export function snapshotClusterState(state: ClusterState): Uint8Array {
  const json = JSON.stringify({ v: SNAPSHOT_VERSION, state }, (_key, value) =>
    typeof value === 'bigint' ? { lsn: value.toString() } : value,
  );
  return new TextEncoder().encode(json);
}

export function restoreClusterState(data: Uint8Array): ClusterState {
  const parsed = JSON.parse(new TextDecoder().decode(data), (_key, value) =>
    value !== null &&
    typeof value === 'object' &&
    typeof value.lsn === 'string' &&
    Object.keys(value).length === 1
      ? BigInt(value.lsn)
      : value,
  ) as { v: number; state: ClusterState };
  if (parsed.v !== SNAPSHOT_VERSION) {
    throw new InvariantViolation(`cluster snapshot version ${parsed.v} is not ${SNAPSHOT_VERSION}`);
  }
  return parsed.state;
}
