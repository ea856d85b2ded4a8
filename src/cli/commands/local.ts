// `pgward up`, `pgward down`, `pgward status`: the local N-node cluster.
import path from 'node:path';
import type { Command } from 'commander';
import { UserError } from '../../errors.ts';
import { downLocalCluster } from '../../local/down.ts';
import {
  connectionUrl,
  type LocalCluster,
  nodeHost,
  readCluster,
  requireCluster,
} from '../../local/layout.ts';
import { collectStatus, formatStatusTable } from '../../local/status.ts';
import { DEFAULT_NODES, DEFAULT_PORT, upLocalCluster } from '../../local/up.ts';

const DIR_HELP = 'directory of the local cluster';
const DEFAULT_DIR = '.pgward';

function integer(name: string) {
  return (text: string): number => {
    if (!/^\d+$/.test(text))
      throw new UserError(`${name} must be a whole number, got '${text}'`, `pass e.g. ${name} 3`);
    return Number(text);
  };
}

function printConnection(cluster: LocalCluster): void {
  const primary = cluster.nodes.find((n) => n.name === cluster.primary) ?? cluster.nodes[0]!;
  process.stdout.write(
    `connect: psql ${connectionUrl(cluster)}\n` +
      `  (proxy of ${cluster.nodes[0]!.name}; PostgreSQL of the primary directly: postgres://postgres@${nodeHost(primary)}:${primary.pgPort}/postgres)\n` +
      `status: npx pgward status --dir ${cluster.dir}    stop: npx pgward down --dir ${cluster.dir}\n`,
  );
}

export function register(program: Command): void {
  program
    .command('up')
    .description('create (first run) or restart the local cluster and print the connection URL')
    .option(
      '-n, --nodes <count>',
      `number of nodes, first run only (default ${DEFAULT_NODES})`,
      integer('--nodes'),
    )
    .option('-d, --dir <dir>', DIR_HELP, DEFAULT_DIR)
    .option(
      '-p, --port <port>',
      `node1's proxy port, first run only; 0 = free ports (default ${DEFAULT_PORT})`,
      integer('--port'),
    )
    .option(
      '--netns',
      'first run only, root: each node in its own network namespace on a private bridge (for partition drills)',
    )
    .option(
      '--witness',
      'first run only: add a witness (a Raft vote, no PostgreSQL), e.g. --nodes 2 --witness',
    )
    .option('--detach', 'return once the cluster accepts writes instead of staying in the foreground')
    .option('--timeout <ms>', 'bound on waiting for writes', integer('--timeout'), 180_000)
    .action(
      async (options: {
        nodes?: number;
        dir: string;
        port?: number;
        netns?: boolean;
        witness?: boolean;
        detach?: boolean;
        timeout: number;
      }) => {
        const dir = path.resolve(options.dir);
        const log = (line: string) => process.stderr.write(`${line}\n`);
        let result: Awaited<ReturnType<typeof upLocalCluster>>;
        try {
          result = await upLocalCluster({
            dir,
            nodes: options.nodes,
            port: options.port,
            ...(options.netns ? { netns: true } : {}),
            ...(options.witness ? { witness: true } : {}),
            timeoutMs: options.timeout,
            log,
          });
        } catch (error) {
          // Leave nothing half-started behind a failed foreground or detached start.
          const cluster = readCluster(dir);
          if (cluster !== null) await downLocalCluster(cluster, { log }).catch(() => {});
          throw error;
        }
        if (result.alreadyRunning) {
          process.stdout.write(`the cluster in ${dir} is already running\n`);
          printConnection(result.cluster);
          return;
        }
        process.stdout.write(`cluster '${result.cluster.name}' accepts writes\n`);
        printConnection(result.cluster);
        if (options.detach) return;
        process.stdout.write('running in the foreground; Ctrl-C stops it\n');
        await new Promise<void>((resolve) => {
          process.once('SIGINT', () => resolve());
          process.once('SIGTERM', () => resolve());
        });
        process.stderr.write('stopping...\n');
        await downLocalCluster(result.cluster, { log });
        process.stderr.write('stopped\n');
      },
    );

  program
    .command('down')
    .description('stop every process of the local cluster (data is kept)')
    .option('-d, --dir <dir>', DIR_HELP, DEFAULT_DIR)
    .option('--timeout <ms>', 'bound on a clean stop before SIGKILL', integer('--timeout'), 60_000)
    .action(async (options: { dir: string; timeout: number }) => {
      const cluster = requireCluster(path.resolve(options.dir));
      const result = await downLocalCluster(cluster, {
        timeoutMs: options.timeout,
        log: (line) => process.stderr.write(`${line}\n`),
      });
      process.stdout.write(
        result.stopped.length === 0 ? `nothing was running in ${cluster.dir}\n` : `stopped ${cluster.dir}\n`,
      );
    });

  program
    .command('status')
    .description('show the local cluster: roles, pids, LSNs, lag, sync state')
    .option('-d, --dir <dir>', DIR_HELP, DEFAULT_DIR)
    .option('--json', 'print the status JSON')
    .action(async (options: { dir: string; json?: boolean }) => {
      const status = await collectStatus(requireCluster(path.resolve(options.dir)));
      process.stdout.write(
        options.json ? `${JSON.stringify(status, null, 2)}\n` : `${formatStatusTable(status)}\n`,
      );
    });
}
