// Runs one pgward proxy in its own process for bench/proxy.ts, so its CPU and RSS are its own:
//   tsx bench/proxy-launcher.ts '{"variant":"pgward","postgresPort":5432,"config":{...}}'
// Prints one JSON line {"port":N} once listening; stops cleanly on SIGTERM.
import { StaticTopology } from '../src/cluster/view.ts';
import { createLogger } from '../src/log.ts';
import { proxyConfigSchema } from '../src/proxy/config.ts';
import { ProxyServer } from '../src/proxy/server.ts';
import { variantNamed } from './proxy-variants.ts';

interface LaunchSpec {
  variant: string;
  postgresPort: number;
  /** Extra config on top of the variant's (the idle-clients run asks for transaction pooling). */
  config?: Record<string, unknown>;
}

const spec = JSON.parse(process.argv[2] ?? '{}') as LaunchSpec;
const variant = variantNamed(spec.variant);
const logger = createLogger({ level: process.env.PGWARD_LOG_LEVEL ?? 'warn' });
const postgres = { host: '127.0.0.1', port: spec.postgresPort };
const config = proxyConfigSchema.parse({
  port: 0,
  readOnlyPort: 0,
  backendUser: 'postgres',
  maxClientConn: 20000,
  ...variant.config,
  ...spec.config,
});
const topology = new StaticTopology({
  term: 1,
  primary: 'pg1',
  promotedAtLsn: null,
  members: [{ name: 'pg1', role: 'primary', postgres, lsn: null, lagBytes: null, healthy: true }],
});
const server = new ProxyServer({
  config,
  topology,
  logger,
  hooks: await variant.hooks({ postgres, logger }),
});
await server.start();
process.stdout.write(`${JSON.stringify({ port: server.addresses().write.port })}\n`);
process.once('SIGTERM', () => {
  server.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
