// What a sidecar runs for exactly-once: the proxy hooks, the ledger installer
// (on this node's PostgreSQL whenever it is the primary) and the retention GC
// (only while it is the primary). One object, so the sidecar wires it in three lines.
import pg from 'pg';
import type { TopologySource } from '../cluster/view.ts';
import { deferred, type Service } from '../lifecycle.ts';
import { componentLogger, type Logger } from '../log.ts';
import type { ExactlyOnceConfig } from './config.ts';
import { LedgerGc, type LedgerLease } from './gc.ts';
import { LedgerInstaller } from './ledger-installer.ts';
import { ExactlyOnceHooks } from './proxy-hooks.ts';

export interface ExactlyOncePartOptions {
  config: ExactlyOnceConfig;
  /** The topology the proxy routes by (S and the term come from it). */
  topology: TopologySource;
  /** How to reach this node's PostgreSQL as the superuser. */
  clientConfig: () => pg.ClientConfig;
  logger: Logger;
}

export class ExactlyOnceSidecarPart implements Service {
  readonly hooks: ExactlyOnceHooks;
  readonly installer: LedgerInstaller;
  readonly gc: LedgerGc;
  private readonly finished = deferred<void>();
  readonly done = this.finished.promise;
  private primary = false;

  constructor(options: ExactlyOncePartOptions) {
    const logger = componentLogger(options.logger, 'exactly-once');
    this.hooks = new ExactlyOnceHooks({ config: options.config, topology: options.topology, logger });
    this.installer = new LedgerInstaller(options.clientConfig, logger);
    this.gc = new LedgerGc(
      options.config,
      () => (this.primary ? ledgerLeases(options.clientConfig) : Promise.resolve([])),
      logger,
    );
  }

  /** Feed the role from every probe of this node's PostgreSQL (null when it is down). */
  onProbe(role: 'primary' | 'backup' | null): void {
    this.primary = role === 'primary';
    this.installer.onProbe(role);
  }

  async start(): Promise<void> {
    await this.gc.start();
  }

  async stop(): Promise<void> {
    await this.gc.stop();
    await this.installer.idle();
    this.finished.resolve();
  }
}

/** One connection per database of this PostgreSQL that has the ledger. */
async function ledgerLeases(clientConfig: () => pg.ClientConfig): Promise<LedgerLease[]> {
  const connect = async (database?: string): Promise<pg.Client> => {
    const client = new pg.Client({ ...clientConfig(), ...(database === undefined ? {} : { database }) });
    client.on('error', () => {});
    await client.connect();
    return client;
  };
  const catalog = await connect();
  let databases: string[];
  try {
    const result = await catalog.query<{ datname: string }>(
      'SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate',
    );
    databases = result.rows.map((r) => r.datname);
  } finally {
    await catalog.end().catch(() => {});
  }
  const leases: LedgerLease[] = [];
  for (const database of databases) {
    const client = await connect(database);
    const has = await client.query("SELECT 1 FROM pg_namespace WHERE nspname = 'pgward'");
    if (has.rows.length === 0) {
      await client.end().catch(() => {});
      continue;
    }
    leases.push({ client, release: () => client.end() });
  }
  return leases;
}
