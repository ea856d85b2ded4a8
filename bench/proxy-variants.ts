// The pgward configurations `npm run bench:proxy` measures, one function per variant. The
// exactly-once layer adds its `exactlyOnce:off|all|keyed` variants here: a name, proxy config
// overrides, the hooks to install in the proxy process, and optional setup / pgbench arguments.
import { rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { type Endpoint, StaticTopology } from '../src/cluster/view.ts';
import { exactlyOnceConfigSchema } from '../src/exactly-once/config.ts';
import { installLedger } from '../src/exactly-once/ledger.ts';
import { ExactlyOnceHooks } from '../src/exactly-once/proxy-hooks.ts';
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
  'eo-off': exactlyOnceVariant(
    'off',
    'exactly-once hooks installed with mode off (the baseline for the eo-* ratios)',
  ),
  'eo-all': exactlyOnceVariant('all', 'exactly-once mode all: commit fence before every write COMMIT'),
  'eo-keyed': {
    ...exactlyOnceVariant(
      'all',
      'exactly-once, tpcb-like with a unique idempotency key per transaction (set_config)',
    ),
    async prepare(postgres) {
      const client = new pg.Client({ ...postgres, user: 'postgres', database: 'postgres' });
      await client.connect();
      try {
        await installLedger(client);
        // A custom script's :scale is 1 unless given: spell out the real one, or every
        // client would hammer branch 1 and the comparison would measure lock contention.
        const branches = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM pgbench_branches');
        writeFileSync(KEYED_TPCB_SCRIPT, KEYED_TPCB.replaceAll(':scale', String(branches.rows[0]?.n ?? 1)));
        process.once('exit', () => rmSync(KEYED_TPCB_SCRIPT, { force: true }));
      } finally {
        await client.end();
      }
    },
    pgbenchArgs: (mode) => (mode === 'tpcb-like' ? ['-f', KEYED_TPCB_SCRIPT] : []),
  },
};

/** pgbench's built-in tpcb-like transaction with a fresh key claimed first (the transaction form). */
const KEYED_TPCB = `\\set aid random(1, 100000 * :scale)
\\set bid random(1, 1 * :scale)
\\set tid random(1, 10 * :scale)
\\set delta random(-5000, 5000)
\\set r random(1, 9000000000000000000)
BEGIN;
SELECT set_config('pgward.idempotency_key', 'tpcb-:client_id-:r', true);
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;
UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);
END;
`;
const KEYED_TPCB_SCRIPT = path.join(os.tmpdir(), `pgward-bench-keyed-tpcb-${process.pid}.sql`);

function exactlyOnceVariant(mode: 'off' | 'all', description: string): ProxyVariant {
  return {
    description,
    config: { poolMode: 'session' },
    hooks: async ({ postgres, logger }) =>
      new ExactlyOnceHooks({
        config: exactlyOnceConfigSchema.parse({ mode }),
        topology: new StaticTopology({
          term: 1,
          primary: 'pg1',
          promotedAtLsn: null,
          members: [{ name: 'pg1', role: 'primary', postgres, lsn: null, lagBytes: null, healthy: true }],
        }),
        logger,
      }),
  };
}

export function variantNamed(name: string): ProxyVariant {
  const variant = proxyVariants[name];
  if (variant === undefined) {
    throw new Error(`unknown proxy variant '${name}'; known: ${Object.keys(proxyVariants).join(', ')}`);
  }
  return variant;
}
