// The pgward configurations `npm run bench:proxy` measures, one function per variant. The
// exactly-once layer adds its `exactlyOnce:off|all|keyed` variants here: a name, proxy config
// overrides, the hooks to install in the proxy process, and optional setup / pgbench arguments.
import type { Endpoint } from '../src/cluster/view.ts';
import type { Logger } from '../src/log.ts';
import { NoopHooks, type ProxyHooks } from '../src/proxy/hooks.ts';

/** The pgbench workloads, by the name used in bench/results/proxy.json. */
export type BenchMode = 'select-only' | 'tpcb-like' | 'select-only-connect';

export interface VariantContext {
  /** The PostgreSQL the proxy fronts. */
  postgres: Endpoint;
  logger: Logger;
}

export interface ProxyVariant {
  /** What the variant measures, for the results file. */
  description: string;
  /** Overrides of the proxy config section (poolMode, poolSize...). */
  config?: Record<string, unknown>;
  /** Builds the hooks inside the proxy process. */
  hooks(context: VariantContext): Promise<ProxyHooks>;
  /** Runs once in the bench process before any round (create a ledger table, say). */
  prepare?(postgres: Endpoint): Promise<void>;
  /** Extra pgbench arguments for a mode (a custom script with idempotency keys, say). */
  pgbenchArgs?(mode: BenchMode): string[];
}

export const proxyVariants: Record<string, ProxyVariant> = {
  pgward: {
    description: 'pgward proxy, session pooling, no exactly-once hooks',
    config: { poolMode: 'session' },
    hooks: async () => new NoopHooks(),
  },
};

export function variantNamed(name: string): ProxyVariant {
  const variant = proxyVariants[name];
  if (variant === undefined) {
    throw new Error(`unknown proxy variant '${name}'; known: ${Object.keys(proxyVariants).join(', ')}`);
  }
  return variant;
}
