// Synchronous quorum commit over the healthy backups. The primary's sidecar keeps
// synchronous_standby_names = 'ANY 1 ("b1", "b2")' so every acknowledged commit is
// flushed on at least one backup. What to do with no healthy backup is a policy:
// `block` keeps the last names (writes wait, RPO 0), `degrade` clears them (async).
import pg from 'pg';

export type Durability = 'block' | 'degrade';

/** quorum: commits wait for a backup; async: they do not (degraded). */
export type SyncMode = 'quorum' | 'async';

export interface SyncDecision {
  /** The value for synchronous_standby_names. */
  names: string;
  mode: SyncMode;
  /** True when no backup is healthy and `block` keeps writes waiting. */
  blocked: boolean;
}

/** Builds `ANY 1 ("a", "b")` from node names, sorted so equal sets give equal strings. */
export function quorumNames(backups: readonly string[]): string {
  if (backups.length === 0) return '';
  const sorted = [...new Set(backups)].sort();
  return `ANY 1 (${sorted.map((name) => pg.escapeIdentifier(name)).join(', ')})`;
}

/** The node names in a value quorumNames wrote (`ANY 1 ("a", "b")` gives a, b). */
export function namesInQuorum(value: string): string[] {
  return [...value.matchAll(/"((?:[^"]|"")*)"/g)].map((m) => m[1]!.replaceAll('""', '"'));
}

/**
 * The desired synchronous_standby_names given the healthy backups.
 * `fallback` are the names used when none is healthy under `block` and nothing was set
 * before (a fresh primary): all configured backups, so writes wait for the first one.
 */
export function desiredSyncStandbys(input: {
  healthyBackups: readonly string[];
  current: string;
  fallbackBackups: readonly string[];
  durability: Durability;
}): SyncDecision {
  if (input.healthyBackups.length > 0) {
    return { names: quorumNames(input.healthyBackups), mode: 'quorum', blocked: false };
  }
  if (input.durability === 'degrade') return { names: '', mode: 'async', blocked: false };
  // Keep waiting on the last quorum unless it names a member that was removed since
  // (`pgward member remove`): a removed node must not be what acknowledges commits.
  const keep =
    input.current !== '' && namesInQuorum(input.current).every((n) => input.fallbackBackups.includes(n));
  const names = keep ? input.current : quorumNames(input.fallbackBackups);
  return { names, mode: names === '' ? 'async' : 'quorum', blocked: names !== '' };
}
