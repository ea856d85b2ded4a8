// A ProxyServer in front of the shared PostgreSQL (127.0.0.1:5432, trust) for proxy tests,
// plus throwaway databases. Everything is torn down by `t.after`, pass or fail.
import type { TestContext } from 'node:test';
import pg from 'pg';
import { type ClusterView, StaticTopology } from '../../src/cluster/view.ts';
import { silentLogger } from '../../src/log.ts';
import { type ProxyConfig, proxyConfigSchema } from '../../src/proxy/config.ts';
import type { ProxyHooks } from '../../src/proxy/hooks.ts';
import { ProxyServer } from '../../src/proxy/server.ts';

export const POSTGRES = { host: '127.0.0.1', port: 5432 };
export const PSQL = '/usr/lib/postgresql/15/bin/psql';
export const PGBENCH = '/usr/lib/postgresql/15/bin/pgbench';

/** psql's connection arguments for a proxy: unaligned, tuples only, stop at the first error. */
export function psqlArgs(port: number, database: string): string[] {
  return [
    '-h',
    '127.0.0.1',
    '-p',
    String(port),
    '-U',
    'postgres',
    '-d',
    database,
    '-At',
    '-v',
    'ON_ERROR_STOP=1',
  ];
}

/** A one-member cluster view whose primary is the shared PostgreSQL. */
export function primaryView(term = 1, postgres = POSTGRES): ClusterView {
  return {
    term,
    primary: 'node1',
    promotedAtLsn: null,
    members: [{ name: 'node1', role: 'primary', postgres, lsn: null, lagBytes: 0, healthy: true }],
  };
}

/** The same cluster with no writable primary (a failover in progress). */
export function noPrimaryView(term: number): ClusterView {
  return { ...primaryView(term), primary: null, members: [] };
}

export interface TestProxy {
  server: ProxyServer;
  topology: StaticTopology;
  port: number;
  /** node-postgres client config for `database` through the proxy. */
  clientConfig(database: string): pg.ClientConfig;
  /** A connected node-postgres client through the proxy, ended after the test. */
  connect(database: string): Promise<pg.Client>;
}

export async function startProxy(
  t: Pick<TestContext, 'after'>,
  overrides: Partial<ProxyConfig> = {},
  options: { hooks?: ProxyHooks; view?: ClusterView } = {},
): Promise<TestProxy> {
  const config = proxyConfigSchema.parse({ port: 0, readOnlyPort: 0, poolSize: 8, ...overrides });
  const topology = new StaticTopology(options.view ?? primaryView());
  const server = new ProxyServer({
    config,
    topology,
    logger: silentLogger(),
    ...(options.hooks === undefined ? {} : { hooks: options.hooks }),
  });
  await server.start();
  t.after(() => server.stop());
  const port = server.addresses().write.port;
  const clientConfig = (database: string): pg.ClientConfig => ({
    host: '127.0.0.1',
    port,
    user: 'postgres',
    database,
  });
  return {
    server,
    topology,
    port,
    clientConfig,
    async connect(database: string) {
      const client = new pg.Client(clientConfig(database));
      client.on('error', () => {});
      await client.connect();
      t.after(() => client.end().catch(() => {}));
      return client;
    },
  };
}

/** Runs SQL directly on the shared PostgreSQL (not through the proxy). */
export async function direct<T extends pg.QueryResultRow = pg.QueryResultRow>(
  sql: string,
  params: unknown[] = [],
  database = 'postgres',
): Promise<pg.QueryResult<T>> {
  const client = new pg.Client({ ...POSTGRES, user: 'postgres', database });
  await client.connect();
  try {
    return await client.query<T>(sql, params);
  } finally {
    await client.end();
  }
}

/** A fresh database, dropped (with its connections) after the test. */
export async function tempDatabase(t: Pick<TestContext, 'after'>, prefix = 'pgward_proxy'): Promise<string> {
  const name = `${prefix}_${process.pid}_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6)}`;
  await direct(`CREATE DATABASE ${name}`);
  t.after(() => direct(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).then(() => undefined));
  return name;
}
