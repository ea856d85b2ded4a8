// `pgward switchover [--to NODE]` (planned: hold, drain, catch up, hand over) and
// `pgward failover [--to NODE]` (immediate hand-over).
import type { Command } from 'commander';
import { callAdmin } from '../admin-client.ts';

interface Options {
  to?: string;
  dir: string;
  api?: string;
  token?: string;
}

export function register(program: Command): void {
  for (const [name, description] of [
    ['switchover', 'move the primary role to another member without client errors (planned maintenance)'],
    ['failover', 'hand the primary role to another member at once (no draining)'],
  ] as const) {
    program
      .command(name)
      .description(description)
      .option('--to <node>', 'the member to promote (default: the most advanced healthy backup)')
      .option('-d, --dir <dir>', 'directory of the local cluster', '.pgward')
      .option('--api <url>', "any member's admin API, instead of a local cluster")
      .option('--token <token>', 'the cluster api.token (read from the local cluster by default)')
      .action(async (options: Options) => {
        const answer = await callAdmin(
          options,
          'POST',
          `/${name}`,
          options.to === undefined ? {} : { to: options.to },
        );
        process.stdout.write(
          `${String(answer.message ?? 'done')}${answer.term === undefined ? '' : ` (term ${String(answer.term)})`}\n`,
        );
      });
  }
}
