// Retention GC of the request ledger: deletes keys older than the retention in
// bounded batches, so one run never holds long locks or bloats a transaction.
// Retention is a contract with clients: a key deleted early reopens duplicates,
// so the default matches the retry horizon of Stripe and Oracle TG (24 h).

import { deferred, type Service } from '../lifecycle.ts';
import type { Logger } from '../log.ts';
import type { SqlClient } from './ledger.ts';

export interface LedgerGcOptions {
  retentionHours: number;
  gcBatchSize: number;
  gcIntervalMs: number;
  /** Upper bound on batches per run, so a huge backlog is worked off over several runs. */
  maxBatchesPerRun?: number;
}

const DEFAULT_MAX_BATCHES_PER_RUN = 100;

/** One GC run: batches until a short batch or the batch bound; returns rows deleted. */
export async function collectLedgerGarbage(client: SqlClient, options: LedgerGcOptions): Promise<number> {
  const maxBatches = options.maxBatchesPerRun ?? DEFAULT_MAX_BATCHES_PER_RUN;
  const retention = `${options.retentionHours * 3600} seconds`;
  let total = 0;
  for (let batch = 0; batch < maxBatches; batch++) {
    const result = await client.query('SELECT pgward.gc($1::interval, $2::int) AS deleted', [
      retention,
      options.gcBatchSize,
    ]);
    const deleted = Number(result.rows[0]?.deleted ?? 0);
    total += deleted;
    if (deleted < options.gcBatchSize) break;
  }
  return total;
}

export interface LedgerLease {
  client: SqlClient;
  release(): Promise<void>;
}

/**
 * Runs GC every `gcIntervalMs` while started. `connect` yields one client per
 * database that holds a ledger on the current primary (none when this node is not
 * the primary, which skips the run); the service releases them after each run.
 */
export class LedgerGc implements Service {
  private readonly finished = deferred<void>();
  readonly done = this.finished.promise;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly options: LedgerGcOptions,
    private readonly connect: () => Promise<LedgerLease[]>,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
    this.finished.resolve();
  }

  /** Runs one GC pass now (also what the timer does); errors are logged, never thrown. */
  async runOnce(): Promise<number> {
    const leases = await this.connect().catch((error: unknown) => {
      this.log.warn('ledger GC could not connect', { error: String(error) });
      return [];
    });
    let total = 0;
    for (const lease of leases) {
      try {
        total += await collectLedgerGarbage(lease.client, this.options);
      } catch (error) {
        this.log.warn('ledger GC failed', { error: String(error) });
      } finally {
        await lease.release().catch(() => {});
      }
    }
    if (total > 0) this.log.info('ledger GC deleted expired keys', { deleted: total });
    return total;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.runOnce().then(() => {
        this.running = null;
        this.schedule();
      });
    }, this.options.gcIntervalMs);
    this.timer.unref();
  }
}
