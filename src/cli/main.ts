// The `pgward` command. Subcommands live in src/cli/commands/*.ts, each exporting
// `register(program)`; every file there is registered, in name order, so a module
// adds its commands without editing this file.
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { isUserError } from '../errors.ts';

export interface CommandModule {
  register(program: Command): void;
}

const COMMANDS_DIR = new URL('./commands/', import.meta.url);

export async function buildProgram(): Promise<Command> {
  const program = new Command('pgward')
    .description(
      'High availability for PostgreSQL: a sidecar per server with a proxy, Raft fencing and failover',
    )
    .exitOverride()
    .showHelpAfterError('(run pgward help for usage)');
  const files = readdirSync(fileURLToPath(COMMANDS_DIR))
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
    .sort();
  for (const file of files) {
    const module = (await import(new URL(file, COMMANDS_DIR).href)) as Partial<CommandModule>;
    if (typeof module.register !== 'function')
      throw new Error(`src/cli/commands/${file} does not export register(program)`);
    module.register(program);
  }
  return program;
}

/** Runs the CLI and exits: 0 on success, 1 on a user error (one line, no stack), 2 on bad usage. */
export async function main(argv: string[]): Promise<void> {
  let code = 0;
  try {
    const program = await buildProgram();
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      code = error.exitCode === 0 ? 0 : 2;
    } else if (isUserError(error)) {
      process.stderr.write(`pgward: ${error.message}\n`);
      code = 1;
    } else {
      process.stderr.write(
        `pgward: internal error (please report it): ${(error as Error)?.stack ?? String(error)}\n`,
      );
      code = 1;
    }
  }
  process.exit(process.exitCode !== undefined && process.exitCode !== 0 ? process.exitCode : code);
}
