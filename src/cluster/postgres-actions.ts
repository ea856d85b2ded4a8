// The PostgreSQL operations failover needs, on top of PostgresInstance: stop and
// resume streaming without a restart, promote with the synchronous quorum set
// first, demote a former primary by pg_rewind (base backup when that fails).
import { readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import type { Logger } from '../log.ts';
import { type FollowTarget, type PostgresInstance, queryOnce, slotNameFor } from '../postgres/instance.ts';
import type { ProbeResult } from '../postgres/probe.ts';
import { quorumNames } from '../postgres/sync-standbys.ts';
import { newestTimeline, rewindCanWork, timelineOfWalFile } from '../postgres/timeline.ts';
import type { MemberSpec } from './commands.ts';
import type { ControlClient } from './control-client.ts';

export function followTargetOf(primary: MemberSpec, self: string): FollowTarget {
  if (primary.pgPort === null) throw new Error(`member ${primary.name} has no PostgreSQL to follow`);
  return { host: primary.host, port: primary.pgPort, slotName: slotNameFor(self) };
}

/** The LSN this member could serve from if promoted: what it received (flushed) or replayed. */
export function fitnessOf(probe: ProbeResult | null): bigint | null {
  if (probe === null) return null;
  if (probe.role === 'primary') return probe.currentLsn;
  const received = probe.receiveLsn ?? 0n;
  const replayed = probe.replayLsn ?? 0n;
  return received > replayed ? received : replayed;
}

/**
 * Clears primary_conninfo (ALTER SYSTEM beats pgward.conf) and reloads: the
 * walreceiver stops, so an old primary can no longer complete a synchronous commit
 * through this backup, and a new leader's replay can settle before it promotes.
 */
export async function stopFollowing(control: ControlClient): Promise<void> {
  await control.query(`ALTER SYSTEM SET primary_conninfo = ''`);
  await control.query('SELECT pg_reload_conf()');
}

/** Points a running backup at `target` (pg 13+ reloads primary_conninfo without a restart). */
export async function followPrimary(
  control: ControlClient,
  instance: PostgresInstance,
  target: FollowTarget,
): Promise<void> {
  await control.query('ALTER SYSTEM RESET primary_conninfo');
  instance.writeConfig(target);
  await control.query('SELECT pg_reload_conf()');
}

export interface ReplayState {
  walReceiverRunning: boolean;
  receiveLsn: bigint | null;
  replayLsn: bigint | null;
}

export async function replayState(control: ControlClient): Promise<ReplayState> {
  const rows = await control.query<{ running: boolean; receive: string | null; replay: string | null }>(
    `SELECT EXISTS (SELECT 1 FROM pg_stat_wal_receiver) AS running,
            (pg_last_wal_receive_lsn() - '0/0')::text AS receive,
            (pg_last_wal_replay_lsn() - '0/0')::text AS replay`,
  );
  const row = rows[0];
  return {
    walReceiverRunning: row?.running ?? false,
    receiveLsn: row?.receive == null ? null : BigInt(row.receive),
    replayLsn: row?.replay == null ? null : BigInt(row.replay),
  };
}

/**
 * Sets the synchronous quorum over `backups` (or none with `degrade` and no
 * backup), then promotes: no commit is acknowledged asynchronously in the moment
 * between pg_promote() and the sync manager's first decision.
 */
export async function promoteWithQuorum(
  control: ControlClient,
  backups: readonly string[],
  durability: 'block' | 'degrade',
): Promise<void> {
  await setQuorum(control, backups, durability);
  // pg_promote(true) checks for the end of recovery only every 100 ms: signal it and poll faster.
  const rows = await control.query<{ signalled: boolean }>('SELECT pg_promote(false) AS signalled');
  if (rows[0]?.signalled !== true) throw new Error('pg_promote could not signal the promotion');
  const deadlineMs = Date.now() + PROMOTE_TIMEOUT_MS;
  for (;;) {
    const state = await control.query<{ recovering: boolean }>('SELECT pg_is_in_recovery() AS recovering');
    if (state[0]?.recovering === false) return;
    if (Date.now() > deadlineMs)
      throw new Error(`the promotion did not finish within ${PROMOTE_TIMEOUT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, PROMOTE_POLL_MS));
  }
}

const PROMOTE_TIMEOUT_MS = 60_000;
const PROMOTE_POLL_MS = 5;

/**
 * Sets synchronous_standby_names to the quorum over `backups` and synchronous_commit
 * on, unless they already are: each ALTER SYSTEM rewrites and fsyncs
 * postgresql.auto.conf, which costs a promotion tens to hundreds of ms on a busy disk.
 * On a standby the values wait unused until it is promoted (a switchover target sets
 * them ahead, while writes still flow).
 */
export async function setQuorum(
  control: ControlClient,
  backups: readonly string[],
  durability: 'block' | 'degrade',
): Promise<void> {
  const names = backups.length === 0 && durability === 'degrade' ? '' : quorumNames(backups);
  const rows = await control.query<{ names: string; commit: string }>(
    `SELECT current_setting('synchronous_standby_names') AS names, current_setting('synchronous_commit') AS commit`,
  );
  if (rows[0]?.names === names && rows[0]?.commit === 'on') return;
  await control.query(`ALTER SYSTEM SET synchronous_standby_names = ${pg.escapeLiteral(names)}`);
  await control.query(`ALTER SYSTEM SET synchronous_commit = 'on'`);
  await control.query('SELECT pg_reload_conf()');
}

/** Physical slots on this (new) primary for the members that will follow it. */
export async function ensureSlots(control: ControlClient, members: readonly string[]): Promise<void> {
  for (const member of members) {
    await control.query(
      `SELECT pg_create_physical_replication_slot($1, true)
        WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)`,
      [slotNameFor(member)],
    );
  }
}

/** Stops a former primary, rewinds it onto `target`, and leaves it configured as a standby (not started). */
export async function rewindOnto(
  instance: PostgresInstance,
  target: FollowTarget,
  logger: Logger,
): Promise<'rewound' | 'cloned'> {
  await instance.stop('fast');
  const local = localNewestTimeline(instance);
  const source = await sourceTimeline(instance, target).catch(() => null);
  if (local !== null && source !== null && !rewindCanWork(local, source)) {
    logger.warn(
      'the new primary promoted onto a timeline this node reached too: the histories diverged under one timeline ID, which pg_rewind cannot see; taking a fresh base backup',
      {
        localTimeline: local,
        sourceTimeline: source,
      },
    );
    await rebuildFrom(instance, target);
    return 'cloned';
  }
  try {
    await instance.rewindFrom(target);
    return 'rewound';
  } catch (error) {
    logger.warn('pg_rewind failed; taking a fresh base backup instead', { error: (error as Error).message });
    await rebuildFrom(instance, target);
    return 'cloned';
  }
}

/** The newest timeline in this stopped server's pg_wal; null when it cannot be read. */
function localNewestTimeline(instance: PostgresInstance): number | null {
  try {
    return newestTimeline(readdirSync(path.join(instance.dataDir, 'pg_wal')));
  } catch {
    return null;
  }
}

/** The timeline `target` writes on now (current even before its first checkpoint after a promotion). */
async function sourceTimeline(instance: PostgresInstance, target: FollowTarget): Promise<number> {
  const rows = await queryOnce<{ name: string }>(
    { ...instance.clientConfig(), host: target.host, port: target.port },
    'SELECT pg_walfile_name(pg_current_wal_lsn()) AS name',
  );
  return timelineOfWalFile(rows[0]?.name ?? '');
}

/** Replaces a stopped server's data with a fresh base backup of `target`. */
export async function rebuildFrom(instance: PostgresInstance, target: FollowTarget): Promise<void> {
  rmSync(instance.dataDir, { recursive: true, force: true });
  await instance.cloneFrom(target);
}

/** Client backends with an open transaction (what a switchover drains). */
export async function openTransactions(control: ControlClient): Promise<number> {
  const rows = await control.query<{ n: string }>(
    `SELECT count(*)::text AS n FROM pg_stat_activity
      WHERE backend_type = 'client backend' AND xact_start IS NOT NULL AND pid <> pg_backend_pid()
        AND application_name NOT LIKE 'pgward%'`,
  );
  return Number(rows[0]?.n ?? 0);
}
