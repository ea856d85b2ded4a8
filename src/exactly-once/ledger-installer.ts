// Keeps the ledger installed on this node's PostgreSQL whenever it is the primary:
// after bootstrap and after every promotion, in every database that accepts
// connections and in template1 (so databases created later have it). Backups get
// it through physical replication. The proxy also installs it lazily in a database
// that lacks it on the first keyed request.
import pg from 'pg';
import type { Logger } from '../log.ts';
import { installLedger } from './ledger.ts';

export class LedgerInstaller {
  /** True once the ledger is installed for the current primary role; reset when the role is lost. */
  private installed = false;
  private running: Promise<void> | null = null;

  constructor(
    private readonly clientConfig: () => pg.ClientConfig,
    private readonly logger: Logger,
  ) {}

  /** Feed every probe result; installs at most once per stretch of being primary. */
  onProbe(role: 'primary' | 'backup' | null): void {
    if (role !== 'primary') {
      this.installed = false;
      return;
    }
    if (this.installed || this.running !== null) return;
    this.running = this.installEverywhere()
      .then(() => {
        this.installed = true;
      })
      .catch((error: unknown) => {
        // Retried on the next probe as primary.
        this.logger.warn('could not install the pgward ledger', { error: String(error) });
      })
      .finally(() => {
        this.running = null;
      });
  }

  /** Settles when no installation is running (for orderly shutdown and tests). */
  async idle(): Promise<void> {
    await this.running;
  }

  async installEverywhere(): Promise<void> {
    const databases = await this.withClient(undefined, async (client) => {
      const result = await client.query<{ datname: string }>(
        "SELECT datname FROM pg_database WHERE datallowconn AND (NOT datistemplate OR datname = 'template1')",
      );
      return result.rows.map((r) => r.datname);
    });
    for (const database of databases) {
      const result = await this.withClient(database, (client) => installLedger(client));
      if (result.applied.length > 0) {
        this.logger.info('installed the pgward ledger', {
          database,
          applied: result.applied,
          version: result.version,
        });
      }
    }
  }

  private async withClient<T>(
    database: string | undefined,
    fn: (client: pg.Client) => Promise<T>,
  ): Promise<T> {
    const client = new pg.Client({ ...this.clientConfig(), ...(database === undefined ? {} : { database }) });
    client.on('error', () => {});
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end().catch(() => {});
    }
  }
}
