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

/**
 * Runs GC every `gcIntervalMs` while started. `connect` yields a client to the
 * current primary (or null when this node is not the primary, which skips the run);
 * the service releases it after each run.
 */
export class LedgerGc implements Service {
  private readonly finished = deferred<void>();
  readonly done = this.finished.promise;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly options: LedgerGcOptions,
    private readonly connect: () => Promise<{ client: SqlClient; release(): Promise<void> } | null>,
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
    const lease = await this.connect().catch((error: unknown) => {
      this.log.warn('ledger GC could not connect', { error: String(error) });
      return null;
    });
    if (lease === null) return 0;
    try {
      const deleted = await collectLedgerGarbage(lease.client, this.options);
      if (deleted > 0) this.log.info('ledger GC deleted expired keys', { deleted });
      return deleted;
    } catch (error) {
      this.log.warn('ledger GC failed', { error: String(error) });
      return 0;
    } finally {
      await lease.release().catch(() => {});
    }
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
