// The IO of a planned switchover, run by the primary's sidecar (the Raft leader).
// The steps are decided by switchover-policy.ts; this file observes (probe, the
// members' GET /health, pg_controldata, the target's LSN) and acts (commit the
// intent, stop PostgreSQL cleanly, hand leadership over). It also keeps the
// hand-over record that lets the old primary rejoin without pg_rewind.
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { AdminResult, LocalHealth } from '../api/routes/types.ts';
import type { Logger } from '../log.ts';
import { type PostgresInstance, queryOnce } from '../postgres/instance.ts';
import { formatLsn } from '../postgres/lsn.ts';
import type { PostgresProbe } from '../postgres/probe.ts';
import type { PostgresSupervisor } from '../sidecar/postgres-supervisor.ts';
import type { ClusterCommand, MemberSpec } from './commands.ts';
import type { FailoverConfig } from './config.ts';
import type { ControlClient } from './control-client.ts';
import { openTransactions } from './postgres-actions.ts';
import type { ClusterState } from './state-machine.ts';
import {
  drainBlockers,
  type HandoverRecord,
  type ProxyHoldReport,
  switchoverStep,
  targetHasFinalWal,
} from './switchover-policy.ts';

/** How often the drain and the catch-up re-check: each pass is a probe and one small request per member. */
const STEP_POLL_MS = 10;
/** The promotion is applied from the Raft log; this only bounds how late the pause figure is taken. */
const PROMOTED_POLL_MS = 5;
/** A member's GET /health slower than this counts as unanswered for this pass. */
const HEALTH_TIMEOUT_MS = 500;
/** After the clean shutdown the target has normally flushed everything already (the walsender waits for it). */
const FINAL_WAL_TIMEOUT_MS = 5000;
const HANDOVER_FILE = 'handover.json';

/** What the switchover needs from the controller. */
export interface SwitchoverHost {
  self: string;
  log: Logger;
  settings: FailoverConfig;
  leaseMs: number;
  electionMs: number;
  /** The sidecar's state directory (node.dataDir), where the hand-over record lives. */
  stateDir: string;
  clock(): number;
  instance: PostgresInstance;
  probe: PostgresProbe;
  supervisor: PostgresSupervisor;
  control: ControlClient;
  state(): ClusterState;
  stillLeading(term: number): boolean;
  commit(command: ClusterCommand): Promise<void>;
  transferLeader(to: string): Promise<boolean>;
  /** This member's own answer (its proxy is local). */
  localHealth(): LocalHealth;
  /** While true the leader pass leaves the stopped PostgreSQL alone and the vote is not withheld. */
  setHandingOver(active: boolean): void;
}

export async function runSwitchover(
  host: SwitchoverHost,
  target: string,
  term: number,
): Promise<AdminResult> {
  const { log, settings } = host;
  const startedMs = host.clock();
  const deadlineMs = startedMs + settings.switchoverTimeoutMs;
  const targetSpec = host.state().members.find((m) => m.spec.name === target)?.spec;
  if (targetSpec === undefined || targetSpec.pgPort === null)
    return { ok: false, status: 400, message: `${target} is not a database member` };
  log.info('switchover started', { event: 'switchover', from: host.self, to: target, term });
  const progress: DrainProgress = { announcedAtMs: null, lastWait: '' };
  let drained: AdminResult | null;
  try {
    drained = await holdAndDrain(host, target, term, deadlineMs, progress);
  } catch (error) {
    // The intent holds every proxy until a newer promotion: never leave it behind.
    if (progress.announcedAtMs !== null && host.stillLeading(term))
      await host.commit({ type: 'switchover-abort', term }).catch(() => {});
    log.warn('switchover failed before the shutdown; writes go on here', {
      event: 'switchover-abort',
      error: (error as Error).message,
      term,
    });
    return { ok: false, status: 503, message: `switchover aborted: ${(error as Error).message}` };
  }
  if (drained !== null) return drained;
  if (progress.lastWait !== '')
    log.warn('drain bound reached: work still running on the primary is cut off', {
      waitingFor: progress.lastWait,
    });
  const heldAtMs = progress.announcedAtMs ?? host.clock();
  host.setHandingOver(true);
  try {
    return await handOver(host, target, targetSpec, term, { startedMs, heldAtMs, deadlineMs });
  } catch (error) {
    const reason = `the hand-over failed: ${(error as Error).message}`;
    if (!host.instance.isRunning()) return restartAndAbort(host, term, reason);
    if (host.stillLeading(term)) await host.commit({ type: 'switchover-abort', term }).catch(() => {});
    return { ok: false, status: 503, message: reason };
  } finally {
    host.setHandingOver(false);
  }
}

interface DrainProgress {
  /** When the intent was committed (every proxy holds from about then). */
  announcedAtMs: number | null;
  /** What the drain or the catch-up last waited for. */
  lastWait: string;
}

const CATCHING_UP = 'target catching up';

/**
 * Announces the intent and waits until the primary may stop: drained (or the drain
 * bound passed) and the target caught up. Null when it may; an answer when aborted.
 */
async function holdAndDrain(
  host: SwitchoverHost,
  target: string,
  term: number,
  deadlineMs: number,
  progress: DrainProgress,
): Promise<AdminResult | null> {
  const { log, settings } = host;
  // A checkpoint while writes still flow leaves the shutdown checkpoint little to write: a shorter pause.
  await host.control.query('CHECKPOINT');
  let drainDeadlineMs = Number.POSITIVE_INFINITY;
  for (;;) {
    if (!host.stillLeading(term))
      return { ok: false, status: 503, message: 'this node lost leadership during the switchover; retry' };
    const announcedAtMs = progress.announcedAtMs;
    // One observation: the probe (target LSN) and, once held, the proxies and open transactions, all at once.
    const [probe, proxies, open] = await Promise.all([
      host.probe.probeNow(),
      announcedAtMs === null ? [] : proxyReports(host, term),
      announcedAtMs === null ? 0 : openTransactions(host.control),
    ]);
    const row = probe.replication.find((r) => r.applicationName === target);
    const blockers =
      announcedAtMs === null
        ? []
        : drainBlockers({
            proxies,
            openTransactions: open,
            sinceAnnounceMs: host.clock() - announcedAtMs,
            leaseMs: host.leaseMs,
          });
    const step = switchoverStep({
      announced: announcedAtMs !== null,
      nowMs: host.clock(),
      deadlineMs,
      drainDeadlineMs,
      blockers,
      targetHealthy: row !== undefined && row.state === 'streaming',
      targetLsn: row?.flushLsn ?? null,
      primaryLsn: probe.currentLsn,
    });
    if (step.kind === 'shutdown') {
      // Empty when drained; else what the drain bound cuts off.
      progress.lastWait = blockers.join('; ');
      return null;
    }
    if (step.kind === 'announce') {
      await host.commit({ type: 'switchover-intent', term, from: host.self, to: target });
      progress.announcedAtMs = host.clock();
      drainDeadlineMs = progress.announcedAtMs + settings.switchoverDrainMs;
    } else if (step.kind === 'abort') {
      if (announcedAtMs !== null && host.stillLeading(term))
        await host.commit({ type: 'switchover-abort', term });
      log.warn('switchover aborted', { event: 'switchover-abort', reason: step.reason, term });
      return { ok: false, status: 503, message: `switchover aborted: ${step.reason}` };
    } else {
      const now = step.kind === 'drain' ? step.blockers.join('; ') : CATCHING_UP;
      if (now !== progress.lastWait)
        log.info('switchover waiting', { event: 'switchover-wait', waitingFor: now });
      progress.lastWait = now;
      await sleep(STEP_POLL_MS);
    }
  }
}

/** Writes are held and drained: stop cleanly, check the target has the final WAL, hand leadership over. */
async function handOver(
  host: SwitchoverHost,
  target: string,
  targetSpec: MemberSpec,
  term: number,
  times: { startedMs: number; heldAtMs: number; deadlineMs: number },
): Promise<AdminResult> {
  const { log, instance, supervisor } = host;
  const primaryChanges = host.state().primaryChanges;
  supervisor.setAutoRestart(false);
  log.info('switchover: writes held and drained; stopping postgres cleanly', {
    event: 'switchover-shutdown',
    term,
    to: target,
  });
  await instance.stop('fast', Math.max(1000, times.deadlineMs - host.clock()));
  // The walsenders waited for the backups to flush everything before the postmaster
  // exited, so the target's LSN read now is normally final already: read both at once.
  const [control, firstLsn] = await Promise.all([
    instance.controlData().catch((error: Error) => {
      log.warn('could not read pg_controldata after the shutdown', { error: error.message });
      return null;
    }),
    receivedLsn(host, targetSpec).catch(() => null),
  ]);
  if (control !== null && control.state !== 'shut down')
    log.warn('postgres did not stop cleanly', { state: control.state });
  const final = control !== null && control.state === 'shut down' ? control.checkpointLsn : null;
  if (final === null) return restartAndAbort(host, term, 'postgres did not shut down cleanly');
  const verifyUntilMs = host.clock() + FINAL_WAL_TIMEOUT_MS;
  let targetLsn = firstLsn;
  while (!targetHasFinalWal(final, targetLsn) && host.clock() < verifyUntilMs) {
    await sleep(STEP_POLL_MS);
    targetLsn = await receivedLsn(host, targetSpec).catch(() => null);
  }
  if (!targetHasFinalWal(final, targetLsn)) {
    return restartAndAbort(
      host,
      term,
      `${target} did not receive the final WAL (${formatLsn(final)}) in ${FINAL_WAL_TIMEOUT_MS} ms`,
    );
  }
  // The target campaigns with the fitness its sidecar last sampled (every probe); until
  // that covers the final WAL, a backup or this node that already saw it refuses the
  // vote and another backup wins the election instead (seen in bench:failover, 1 in 20).
  const targetLsnNow = targetLsn!;
  const fitnessUntilMs = host.clock() + FINAL_WAL_TIMEOUT_MS;
  let fitness = await voteFitnessOf(targetSpec);
  while ((fitness === null || fitness < targetLsnNow) && host.clock() < fitnessUntilMs) {
    await sleep(STEP_POLL_MS);
    fitness = await voteFitnessOf(targetSpec);
  }
  if (fitness === null || fitness < targetLsnNow) {
    log.warn("switchover: the target's vote does not cover the final WAL yet; handing over anyway", {
      to: target,
      targetLsn: formatLsn(targetLsnNow),
      fitness: fitness === null ? null : formatLsn(fitness),
    });
  }
  writeHandoverRecord(host.stateDir, { term, to: target, checkpointLsn: final, primaryChanges });
  log.info('switchover: the target holds the final WAL; handing leadership over', {
    event: 'switchover-transfer',
    term,
    to: target,
    finalLsn: formatLsn(final),
    targetLsn: formatLsn(targetLsn!),
  });
  if (!host.stillLeading(term) || !(await host.transferLeader(target))) {
    clearHandoverRecord(host.stateDir);
    return restartAndAbort(host, term, `leadership could not move to ${target}`);
  }
  const timeoutMs = Math.max(0, times.deadlineMs - host.clock()) + host.electionMs * 2;
  const until = host.clock() + timeoutMs;
  const promoted = () => host.state().primary === target && host.state().promotedTerm > term;
  while (!promoted() && host.clock() < until) await sleep(PROMOTED_POLL_MS);
  if (!promoted())
    return { ok: false, status: 503, message: `${target} did not take over in time; check GET /cluster` };
  const now = host.clock();
  const pauseMs = Math.round(now - times.heldAtMs);
  const ms = Math.round(now - times.startedMs);
  log.info('switchover done', {
    event: 'switchover-done',
    to: target,
    term: host.state().promotedTerm,
    ms,
    pauseMs,
  });
  return {
    ok: true,
    message: `${target} is the primary`,
    detail: { term: host.state().promotedTerm, ms, pauseMs },
  };
}

/** The hand-over cannot finish safely: this node is still the leader, so it starts its PostgreSQL as the primary again. */
async function restartAndAbort(host: SwitchoverHost, term: number, reason: string): Promise<AdminResult> {
  host.log.warn('switchover aborted after the shutdown; restarting postgres as the primary', {
    event: 'switchover-abort',
    reason,
    term,
  });
  if (host.stillLeading(term)) {
    await host.supervisor.startOnce();
    await host.commit({ type: 'switchover-abort', term }).catch(() => {});
  }
  return { ok: false, status: 503, message: `switchover aborted: ${reason}` };
}

/** The hold and the busy write sessions of every member that runs a proxy, this one included. */
/** The vote fitness a member's sidecar reports on /health; null when it does not answer. */
async function voteFitnessOf(member: MemberSpec): Promise<bigint | null> {
  try {
    const response = await fetch(`http://${member.host}:${member.apiPort}/health`, {
      signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS),
    });
    const health = (await response.json()) as LocalHealth;
    return typeof health.voteFitness === 'string' ? BigInt(health.voteFitness) : null;
  } catch {
    return null;
  }
}

async function proxyReports(host: SwitchoverHost, term: number): Promise<ProxyHoldReport[]> {
  const members = host
    .state()
    .members.map((m) => m.spec)
    .filter((m) => m.proxyPort !== null);
  return Promise.all(
    members.map(async (member): Promise<ProxyHoldReport> => {
      let health: LocalHealth | null = null;
      if (member.name === host.self) health = host.localHealth();
      else {
        try {
          const response = await fetch(`http://${member.host}:${member.apiPort}/health`, {
            signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS),
          });
          health = (await response.json()) as LocalHealth;
        } catch {
          health = null;
        }
      }
      // A sidecar without these fields runs no proxy of this version: it counts as unanswered.
      if (health === null || health.switchoverHold === undefined)
        return { node: member.name, reachable: false, holding: false, writesInFlight: 0 };
      return {
        node: member.name,
        reachable: true,
        holding: health.switchoverHold === term,
        writesInFlight: health.writesInFlight ?? 0,
      };
    }),
  );
}

/** max(received, replayed) LSN of the target's PostgreSQL, asked directly. */
async function receivedLsn(host: SwitchoverHost, target: MemberSpec): Promise<bigint | null> {
  const rows = await queryOnce<{ received: string | null; replayed: string | null }>(
    {
      ...host.instance.clientConfig(),
      host: target.host,
      port: target.pgPort!,
      connectionTimeoutMillis: 1000,
    },
    `SELECT (pg_last_wal_receive_lsn() - '0/0')::text AS received,
            (pg_last_wal_replay_lsn() - '0/0')::text AS replayed`,
  );
  const row = rows[0];
  const received = row?.received == null ? null : BigInt(row.received);
  const replayed = row?.replayed == null ? null : BigInt(row.replayed);
  if (received === null) return replayed;
  return replayed === null || received > replayed ? received : replayed;
}

// ---------------------------------------------------------------- the hand-over record

export function readHandoverRecord(stateDir: string): HandoverRecord | null {
  const file = path.join(stateDir, HANDOVER_FILE);
  if (!existsSync(file)) return null;
  const saved = JSON.parse(readFileSync(file, 'utf8')) as {
    term: number;
    to: string;
    checkpointLsn: string;
    primaryChanges: number;
  };
  return { ...saved, checkpointLsn: BigInt(saved.checkpointLsn) };
}

function writeHandoverRecord(stateDir: string, record: HandoverRecord): void {
  const file = path.join(stateDir, HANDOVER_FILE);
  const text = JSON.stringify({ ...record, checkpointLsn: record.checkpointLsn.toString() });
  writeFileSync(`${file}.tmp`, `${text}\n`);
  renameSync(`${file}.tmp`, file);
}

export function clearHandoverRecord(stateDir: string): void {
  rmSync(path.join(stateDir, HANDOVER_FILE), { force: true });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
