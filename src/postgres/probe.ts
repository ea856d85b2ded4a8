// The health probe: every probeIntervalMs one query to the local PostgreSQL, behind
// an opossum circuit breaker, reporting role, LSNs, lag and (on a primary) its
// streaming backups. `probeFailures` consecutive misses mark PostgreSQL down.
import { EventEmitter } from 'node:events';
import CircuitBreaker from 'opossum';
import pg from 'pg';
import { deferred, type Service } from '../lifecycle.ts';
import type { Logger } from '../log.ts';
import { lagBytes, parseLsnOrNull } from './lsn.ts';

export interface ReplicationRow {
  /** The backup's application_name: its node name. */
  applicationName: string;
  /** 'streaming', 'catchup', 'startup', ... */
  state: string;
  /** 'quorum', 'sync', 'potential' or 'async'. */
  syncState: string;
  sentLsn: bigint | null;
  writeLsn: bigint | null;
  flushLsn: bigint | null;
  replayLsn: bigint | null;
}

export interface ProbeResult {
  atMs: number;
  role: 'primary' | 'backup';
  /** pg_current_wal_lsn() on a primary; null on a backup. */
  currentLsn: bigint | null;
  /** pg_current_wal_flush_lsn() on a primary; null on a backup. */
  flushLsn: bigint | null;
  /** pg_last_wal_receive_lsn(): flushed to disk by the walreceiver; null on a primary. */
  receiveLsn: bigint | null;
  /** pg_last_wal_replay_lsn(); null on a primary. */
  replayLsn: bigint | null;
  /** On a backup: received but not yet replayed bytes; on a primary: 0. */
  lagBytes: number;
  /** On a backup: pg_stat_wal_receiver.status ('streaming', ...) or null without a walreceiver. */
  walReceiverStatus: string | null;
  /** On a primary: pg_stat_replication; on a backup: []. */
  replication: ReplicationRow[];
  /** current_setting('synchronous_standby_names'). */
  synchronousStandbyNames: string;
}

export interface ProbeEvents {
  /** Every successful probe. */
  result: [ProbeResult];
  /** Every failed probe, with the count of consecutive failures. */
  failure: [{ error: Error; consecutive: number }];
  /** Once when consecutive failures reach probeFailures. */
  down: [{ error: Error }];
  /** The first success at start and after `down`. */
  up: [ProbeResult];
}

export interface ProbeOptions {
  clientConfig: pg.ClientConfig;
  intervalMs: number;
  /** Consecutive failures that mark PostgreSQL down. */
  failures: number;
  timeoutMs: number;
  logger: Logger;
  now?: () => number;
}

const PROBE_SQL = `
SELECT pg_is_in_recovery() AS in_recovery,
       CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS current_lsn,
       CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_flush_lsn()::text END AS flush_lsn,
       pg_last_wal_receive_lsn()::text AS receive_lsn,
       pg_last_wal_replay_lsn()::text AS replay_lsn,
       (SELECT status FROM pg_stat_wal_receiver LIMIT 1) AS receiver_status,
       current_setting('synchronous_standby_names') AS sync_names,
       COALESCE((SELECT json_agg(json_build_object(
                  'name', application_name, 'state', state, 'sync', sync_state,
                  'sent', sent_lsn::text, 'write', write_lsn::text,
                  'flush', flush_lsn::text, 'replay', replay_lsn::text))
                 FROM pg_stat_replication), '[]'::json) AS replication`;

interface ProbeRow {
  in_recovery: boolean;
  current_lsn: string | null;
  flush_lsn: string | null;
  receive_lsn: string | null;
  replay_lsn: string | null;
  receiver_status: string | null;
  sync_names: string;
  replication: Array<{
    name: string;
    state: string;
    sync: string;
    sent: string | null;
    write: string | null;
    flush: string | null;
    replay: string | null;
  }>;
}

export function toProbeResult(row: ProbeRow, atMs: number): ProbeResult {
  const receiveLsn = parseLsnOrNull(row.receive_lsn);
  const replayLsn = parseLsnOrNull(row.replay_lsn);
  return {
    atMs,
    role: row.in_recovery ? 'backup' : 'primary',
    currentLsn: parseLsnOrNull(row.current_lsn),
    flushLsn: parseLsnOrNull(row.flush_lsn),
    receiveLsn,
    replayLsn,
    lagBytes:
      row.in_recovery && receiveLsn !== null && replayLsn !== null ? lagBytes(receiveLsn, replayLsn) : 0,
    walReceiverStatus: row.receiver_status,
    synchronousStandbyNames: row.sync_names,
    replication: row.replication.map((r) => ({
      applicationName: r.name,
      state: r.state,
      syncState: r.sync,
      sentLsn: parseLsnOrNull(r.sent),
      writeLsn: parseLsnOrNull(r.write),
      flushLsn: parseLsnOrNull(r.flush),
      replayLsn: parseLsnOrNull(r.replay),
    })),
  };
}

export class PostgresProbe extends EventEmitter<ProbeEvents> implements Service {
  private readonly options: ProbeOptions;
  private readonly breaker: CircuitBreaker<[], ProbeResult>;
  private readonly now: () => number;
  private readonly ended = deferred<void>();
  private client: pg.Client | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private consecutiveFailures = 0;
  private isDown = false;
  private seenUp = false;
  private latest: ProbeResult | null = null;
  private inFlight: Promise<void> | null = null;

  constructor(options: ProbeOptions) {
    super();
    this.options = options;
    this.now = options.now ?? Date.now;
    this.breaker = new CircuitBreaker(() => this.probeOnce(), {
      timeout: options.timeoutMs,
      // Open after `failures` straight misses, then retry about twice per failure window.
      volumeThreshold: options.failures,
      errorThresholdPercentage: 50,
      rollingCountTimeout: Math.max(1000, options.intervalMs * options.failures * 4),
      resetTimeout: Math.max(200, options.intervalMs * 3),
    });
  }

  get done(): Promise<void> {
    return this.ended.promise;
  }

  /** The latest successful result (null before the first). */
  last(): ProbeResult | null {
    return this.latest;
  }

  /** False once probeFailures consecutive probes failed, until the next success. */
  healthy(): boolean {
    return this.seenUp && !this.isDown;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    await this.inFlight;
    this.closeClient();
    this.breaker.shutdown();
    this.ended.resolve();
  }

  /** Probes now, outside the schedule (tests, and callers that need a fresh reading). */
  async probeNow(): Promise<ProbeResult> {
    return this.probeOnce();
  }

  private schedule(delayMs: number): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      this.inFlight = this.tick().finally(() => {
        this.inFlight = null;
        this.schedule(this.options.intervalMs);
      });
    }, delayMs);
  }

  private async tick(): Promise<void> {
    try {
      const result = await this.breaker.fire();
      this.latest = result;
      this.consecutiveFailures = 0;
      if (this.isDown || !this.seenUp) {
        this.isDown = false;
        this.seenUp = true;
        this.options.logger.info('postgres up', { role: result.role });
        this.emit('up', result);
      }
      this.emit('result', result);
    } catch (cause) {
      const error = cause instanceof Error ? cause : new Error(String(cause));
      this.closeClient();
      this.consecutiveFailures++;
      this.emit('failure', { error, consecutive: this.consecutiveFailures });
      if (!this.isDown && this.consecutiveFailures >= this.options.failures) {
        this.isDown = true;
        this.options.logger.warn('postgres down', { error: error.message, misses: this.consecutiveFailures });
        this.emit('down', { error });
      }
    }
  }

  private async probeOnce(): Promise<ProbeResult> {
    if (this.client === null) {
      const client = new pg.Client({
        ...this.options.clientConfig,
        connectionTimeoutMillis: this.options.timeoutMs,
        query_timeout: this.options.timeoutMs,
        application_name: 'pgward_probe',
      });
      client.on('error', () => {
        if (this.client === client) this.client = null;
      });
      this.client = client;
      await client.connect();
    }
    const result = await this.client.query<ProbeRow>(PROBE_SQL);
    const row = result.rows[0];
    if (row === undefined) throw new Error('probe query returned no row');
    return toProbeResult(row, this.now());
  }

  private closeClient(): void {
    const client = this.client;
    this.client = null;
    client?.end().catch(() => {});
  }
}
