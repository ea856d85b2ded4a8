// Where a request goes, from the cluster view alone. Pure: no IO.
import type { ClusterView, Endpoint } from '../cluster/view.ts';
import { primaryEndpoint } from '../cluster/view.ts';

export type PortKind = 'write' | 'read';

export interface Route {
  readonly endpoint: Endpoint;
  /** The member it belongs to. */
  readonly member: string;
  /** True when this route may take writes (the primary of `term`). */
  readonly writable: boolean;
}

/**
 * The write port goes to the primary; the read-only port to a healthy backup whose
 * lag is known and at most `maxLagBytes` (round-robin by `turn`), else to the primary.
 * Null when there is nowhere to go (no writable primary and, for reads, no backup).
 */
export function chooseRoute(
  view: ClusterView,
  port: PortKind,
  maxLagBytes: number,
  turn: number,
): Route | null {
  const primary = primaryEndpoint(view);
  const primaryRoute = primary === null ? null : { endpoint: primary, member: view.primary!, writable: true };
  if (port === 'write') return primaryRoute;
  const backups = view.members.filter(
    (m) =>
      m.role === 'backup' &&
      m.healthy &&
      m.postgres !== null &&
      m.lagBytes !== null &&
      m.lagBytes <= maxLagBytes &&
      m.name !== view.primary,
  );
  if (backups.length === 0) return primaryRoute;
  const chosen = backups[Math.abs(turn) % backups.length]!;
  return { endpoint: chosen.postgres!, member: chosen.name, writable: false };
}

export function endpointKey(endpoint: Endpoint): string {
  return `${endpoint.host}:${endpoint.port}`;
}
