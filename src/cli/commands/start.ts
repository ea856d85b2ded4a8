// `pgward start --config FILE`: run this node's sidecar in the foreground.
import type { Command } from 'commander';
import { loadConfig } from '../../config/load.ts';
import { createLogger } from '../../log.ts';
import { ProxyOnlySidecar } from '../../sidecar/proxy-only.ts';
import { Sidecar } from '../../sidecar/sidecar.ts';
import { WitnessSidecar } from '../../sidecar/witness.ts';

export function register(program: Command): void {
  program
    .command('start')
    .description('run the sidecar of one node (supervises its PostgreSQL, probe, proxy and API)')
    .requiredOption('-c, --config <file>', 'YAML configuration file')
    .option('--log-level <level>', 'error, warn, info or debug (overrides log.level)')
    .option('--role <role>', 'member, witness or proxy (overrides node.role)')
    .action(async (options: { config: string; logLevel?: string; role?: string }) => {
      const config = loadConfig({
        file: options.config,
        overrides: { 'log.level': options.logLevel, 'node.role': options.role },
      });
      const logger = createLogger({
        level: config.log.level,
        fields: { cluster: config.cluster.name, node: config.node.name },
      });
      const sidecar =
        config.node.role === 'proxy'
          ? new ProxyOnlySidecar(config, logger)
          : config.node.role === 'witness'
            ? new WitnessSidecar({ config, logger, configFile: options.config })
            : new Sidecar({ config, logger, configFile: options.config });
      let signals = 0;
      const onSignal = (signal: NodeJS.Signals) => {
        signals++;
        if (signals > 1) {
          logger.warn('second signal: exiting without a clean stop', { signal });
          process.exit(130);
        }
        logger.info('stopping', { signal });
        void sidecar.stop();
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
      try {
        await sidecar.start();
      } catch (error) {
        if (signals > 0) {
          await sidecar.stop();
          return;
        }
        logger.error('sidecar failed to start', { error: (error as Error).message });
        await sidecar.stop();
        throw error;
      }
      await sidecar.done;
      logger.info('stopped');
    });
}
