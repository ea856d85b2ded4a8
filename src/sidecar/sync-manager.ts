// On the primary: keeps synchronous_standby_names equal to the quorum over the
// healthy (streaming) backups, as the probe reports them, via ALTER SYSTEM + reload.
import pg from 'pg';
import type { Logger } from '../log.ts';
import type { PostgresInstance } from '../postgres/instance.ts';
import type { ProbeResult } from '../postgres/probe.ts';
import { type Durability, desiredSyncStandbys, type SyncDecision } from '../postgres/sync-standbys.ts';

export interface SyncManagerOptions {
  instance: PostgresInstance;
  logger: Logger;
  durability: Durability;
  /** The other members that may act as synchronous backups. */
  backups: () => string[];
  /**
   * Whether this node may write now (with failover: its lease gate is open). While
   * it may not, nothing changes: a primary woken from a freeze, before it hears of
   * the new term, sees no streaming backup, and degrading to asynchronous commit
   * would release the commits waiting on its PostgreSQL after a new primary took
   * over (acknowledged, then rewound away). Absent: always.
   */
  mayChange?: () => boolean;
}

export class SyncStandbyManager {
  private readonly options: SyncManagerOptions;
  private applying = false;
  private decision: SyncDecision | null = null;
  private enabled = true;

  constructor(options: SyncManagerOptions) {
    this.options = options;
  }

  /** The last decision applied on this primary (null on a backup or before the first). */
  current(): SyncDecision | null {
    return this.decision;
  }

  /** Failover pauses management while it demotes or promotes. */
  setEnabled(enabled: boolean): void {
    this.enabled = enabled;
    if (!enabled) this.decision = null;
  }

  /** Feed every probe result; applies a change when the healthy set changed. */
  onProbe(result: ProbeResult): void {
    if (!this.enabled || result.role !== 'primary') {
      if (result.role !== 'primary') this.decision = null;
      return;
    }
    if (this.options.mayChange?.() === false) return;
    const backups = this.options.backups();
    const healthy = result.replication
      .filter((r) => r.state === 'streaming' && backups.includes(r.applicationName))
      .map((r) => r.applicationName);
    const decision = desiredSyncStandbys({
      healthyBackups: healthy,
      current: result.synchronousStandbyNames,
      fallbackBackups: backups,
      durability: this.options.durability,
    });
    if (decision.names === result.synchronousStandbyNames) {
      this.decision = decision;
      return;
    }
    if (this.applying) return;
    this.applying = true;
    this.apply(decision)
      .then(() => {
        this.decision = decision;
      })
      .catch((error: Error) =>
        this.options.logger.warn('setting synchronous_standby_names failed', { error: error.message }),
      )
      .finally(() => {
        this.applying = false;
      });
  }

  private async apply(decision: SyncDecision): Promise<void> {
    const { instance, logger } = this.options;
    // ALTER SYSTEM takes no parameters; the value is a quoted literal.
    await instance.query(`ALTER SYSTEM SET synchronous_standby_names = ${pg.escapeLiteral(decision.names)}`);
    await instance.query(`ALTER SYSTEM SET synchronous_commit = 'on'`);
    await instance.reload();
    logger.info('synchronous standbys changed', {
      names: decision.names,
      mode: decision.mode,
      blocked: decision.blocked,
    });
  }
}
