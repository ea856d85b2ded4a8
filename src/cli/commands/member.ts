// `pgward member add|remove`: membership changes through the leader's admin API.
import type { Command } from 'commander';
import { UserError } from '../../errors.ts';
import { callAdmin } from '../admin-client.ts';

interface Target {
  dir: string;
  api?: string;
  token?: string;
}

function port(name: string) {
  return (text: string): number => {
    const value = Number(text);
    if (!Number.isInteger(value) || value < 1 || value > 65535) {
      throw new UserError(`${name} must be a port number, got '${text}'`, `pass e.g. ${name} 7404`);
    }
    return value;
  };
}

export function register(program: Command): void {
  const member = program.command('member').description('add or remove a Raft member');
  const withTarget = (command: Command) =>
    command
      .option('-d, --dir <dir>', 'directory of the local cluster', '.pgward')
      .option('--api <url>', "any member's admin API, instead of a local cluster")
      .option('--token <token>', 'the cluster api.token (read from the local cluster by default)');
  withTarget(
    member
      .command('add <name>')
      .description('add a member (or --witness) with its addresses')
      .option('--witness', 'a voter without PostgreSQL that never becomes primary')
      .option('--host <host>', 'where its sidecar listens', '127.0.0.1')
      .requiredOption('--raft-port <port>', 'its Raft port', port('--raft-port'))
      .requiredOption('--api-port <port>', 'its admin API port', port('--api-port'))
      .option('--pg-port <port>', 'its PostgreSQL port (members)', port('--pg-port'))
      .option('--proxy-port <port>', 'its proxy port (members), shown in status', port('--proxy-port')),
  ).action(
    async (
      name: string,
      options: Target & {
        witness?: boolean;
        host: string;
        raftPort: number;
        apiPort: number;
        pgPort?: number;
        proxyPort?: number;
      },
    ) => {
      const answer = await callAdmin(options, 'POST', '/members', {
        name,
        kind: options.witness ? 'witness' : 'member',
        host: options.host,
        raftPort: options.raftPort,
        apiPort: options.apiPort,
        pgPort: options.pgPort ?? null,
        proxyPort: options.proxyPort ?? null,
      });
      process.stdout.write(`${String(answer.message ?? 'added')}\n`);
    },
  );
  withTarget(member.command('remove <name>').description('remove a member that is not the primary')).action(
    async (name: string, options: Target) => {
      const answer = await callAdmin(options, 'DELETE', `/members/${encodeURIComponent(name)}`, undefined);
      process.stdout.write(`${String(answer.message ?? 'removed')}\n`);
    },
  );
}
