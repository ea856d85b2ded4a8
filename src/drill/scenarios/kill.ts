// Crash faults: kill -9 of PostgreSQL, of the whole node, or of a backup.
import type { Injected, Scenario, ScenarioContext } from './types.ts';

const RESTART_TIMEOUT_MS = 180_000;

function killPostgres(ctx: ScenarioContext, node: string, expectsNewTerm: boolean, name: string): void {
  const pids = ctx.target.postmasterPids(node);
  if (pids.length === 0) throw new Error(`${node} has no running PostgreSQL to kill`);
  ctx.target.signal(pids.slice(0, 1), 'SIGKILL');
  ctx.fault(name, expectsNewTerm, `kill -9 postmaster ${pids[0]} of ${node}`);
}

export const killPostgresScenario: Scenario = {
  name: 'kill-postgres',
  description:
    "kill -9 of the primary's postmaster; its sidecar hands over and PostgreSQL rejoins as a backup",
  async run(ctx): Promise<Injected> {
    killPostgres(ctx, ctx.primary, true, 'kill-postgres');
    return { heal: async () => {} };
  },
};

function killNode(ctx: ScenarioContext, node: string, expectsNewTerm: boolean, name: string): Injected {
  const sidecar = ctx.target.sidecarPid(node);
  const postgres = ctx.target.postmasterPids(node);
  if (sidecar === null) throw new Error(`${node} has no running sidecar to kill`);
  // Sidecar first: a sidecar left alive would notice its PostgreSQL dying and hand over cleanly.
  // Then every PostgreSQL process, backends included, as when the machine dies.
  ctx.target.signal([sidecar], 'SIGKILL');
  ctx.target.signal(postgres, 'SIGKILL');
  ctx.fault(
    name,
    expectsNewTerm,
    `kill -9 sidecar ${sidecar} and ${postgres.length} PostgreSQL processes of ${node}`,
  );
  return { heal: () => ctx.target.restartMissing(RESTART_TIMEOUT_MS) };
}

export const killNodeScenario: Scenario = {
  name: 'kill-node',
  description: "kill -9 of the primary's sidecar and postmaster; the node is restarted and rejoins by rewind",
  async run(ctx) {
    return killNode(ctx, ctx.primary, true, 'kill-node');
  },
};

export const killBackupScenario: Scenario = {
  name: 'kill-backup',
  description: 'kill -9 of a backup node (sidecar + postmaster); writes go on, the backup returns',
  async run(ctx) {
    const backup = ctx.target.nodeNames().find((n) => n !== ctx.primary);
    if (backup === undefined) throw new Error('kill-backup needs at least two nodes');
    return killNode(ctx, backup, false, 'kill-backup');
  },
};

export { killPostgres };
