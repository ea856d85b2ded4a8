// A ProxyServer in front of a pg-pair primary, as the exactly-once and pinned-session
// tests run it: the test is the topology (a StaticTopology it sets by hand when it
// plays the failover), the proxy holds requests up to 60 s meanwhile.
import type { TestContext } from 'node:test';
import { type ClusterView, StaticTopology } from '../../src/cluster/view.ts';
import { exactlyOnceConfigSchema } from '../../src/exactly-once/config.ts';
import { ExactlyOnceHooks } from '../../src/exactly-once/proxy-hooks.ts';
import { silentLogger } from '../../src/log.ts';
import { proxyConfigSchema } from '../../src/proxy/config.ts';
import { ProxyServer } from '../../src/proxy/server.ts';
import type { PgNode } from './pg-pair.ts';

/** A one-member view whose primary is `node`, named by its port so each PostgreSQL is a distinct member. */
export function pairView(term: number, node: PgNode, promotedAtLsn: bigint | null = null): ClusterView {
  return {
    term,
    primary: `n${node.port}`,
    promotedAtLsn,
    members: [
      {
        name: `n${node.port}`,
        role: 'primary',
        postgres: { host: '127.0.0.1', port: node.port },
        lsn: null,
        lagBytes: 0,
        healthy: true,
      },
    ],
  };
}

export interface PairProxy {
  proxy: ProxyServer;
  topology: StaticTopology;
  /** The write port clients connect to. */
  port: number;
}

/**
 * Starts a proxy (ports from the OS) on a term-1 view of `primary`, with the
 * exactly-once hooks in mode `all` unless `exactlyOnce` is null; stopped by t.after.
 */
export async function startPairProxy(
  t: Pick<TestContext, 'after'>,
  primary: PgNode,
  exactlyOnce: { resolveTimeoutMs: number } | null,
): Promise<PairProxy> {
  const topology = new StaticTopology(pairView(1, primary));
  const proxy = new ProxyServer({
    config: proxyConfigSchema.parse({
      port: 0,
      readOnlyPort: 0,
      backendUser: 'postgres',
      holdTimeoutMs: 60_000,
    }),
    topology,
    logger: silentLogger(),
    ...(exactlyOnce === null
      ? {}
      : {
          hooks: new ExactlyOnceHooks({
            config: exactlyOnceConfigSchema.parse({
              mode: 'all',
              resolveTimeoutMs: exactlyOnce.resolveTimeoutMs,
            }),
            topology,
            logger: silentLogger(),
          }),
        }),
  });
  await proxy.start();
  t.after(() => proxy.stop());
  return { proxy, topology, port: proxy.addresses().write.port };
}
