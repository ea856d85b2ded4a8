import type { ConfChange, ConfChangeType, ConfState, NodeId } from './types.ts';

const CONF_CHANGE_TYPES: readonly ConfChangeType[] = ['addVoter', 'addWitness', 'addLearner', 'remove'];

/** Encodes a ConfChange as the data of a 'confChange' entry (UTF-8 JSON). */
export function encodeConfChange(change: ConfChange): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ type: change.type, node: change.node }));
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  const parsed: unknown = JSON.parse(new TextDecoder().decode(data));
  if (typeof parsed !== 'object' || parsed === null) throw new Error('raft: malformed conf change entry');
  const { type, node } = parsed as { type?: unknown; node?: unknown };
  if (typeof node !== 'string' || node === '' || !CONF_CHANGE_TYPES.includes(type as ConfChangeType)) {
    throw new Error('raft: malformed conf change entry');
  }
  return { type: type as ConfChangeType, node };
}

export function cloneConfState(cs: ConfState): ConfState {
  return { voters: [...cs.voters], witnesses: [...cs.witnesses], learners: [...cs.learners] };
}

/** Members that count for quorum: voters and witnesses. */
export function quorumMembers(cs: ConfState): NodeId[] {
  return [...cs.voters, ...cs.witnesses];
}

export function allMembers(cs: ConfState): NodeId[] {
  return [...cs.voters, ...cs.witnesses, ...cs.learners];
}

export function isMember(cs: ConfState, id: NodeId): boolean {
  return cs.voters.includes(id) || cs.witnesses.includes(id) || cs.learners.includes(id);
}

/** Asserts the three lists are disjoint, duplicate-free and hold at least one voter. */
export function assertValidConfState(cs: ConfState): void {
  const all = allMembers(cs);
  if (new Set(all).size !== all.length) throw new Error(`raft: member listed twice in ${JSON.stringify(cs)}`);
  if (all.includes('')) throw new Error('raft: empty node id in conf state');
  if (cs.voters.length === 0) throw new Error('raft: a configuration needs at least one campaigning voter');
}

/** The membership after `change`; throws if the result would be invalid. */
export function applyConfChange(cs: ConfState, change: ConfChange): ConfState {
  const without = (list: NodeId[]) => list.filter((id) => id !== change.node);
  const next: ConfState = {
    voters: without(cs.voters),
    witnesses: without(cs.witnesses),
    learners: without(cs.learners),
  };
  if (change.type === 'addVoter') next.voters.push(change.node);
  else if (change.type === 'addWitness') next.witnesses.push(change.node);
  else if (change.type === 'addLearner') next.learners.push(change.node);
  assertValidConfState(next);
  return next;
}

/**
 * Whether `change` is a single-server change: quorum membership (voters +
 * witnesses) changes by at most one server, so old and new majorities overlap.
 */
export function validateConfChange(cs: ConfState, change: ConfChange): string | null {
  try {
    applyConfChange(cs, change);
  } catch (error) {
    return (error as Error).message;
  }
  if (change.type === 'remove' && !isMember(cs, change.node)) return `${change.node} is not a member`;
  return null;
}
