// Isolate the primary's node from the other nodes (Raft, replication, health
// polls) while clients in the root namespace still reach its proxy: the majority
// elects a new primary, the isolated one must stop acknowledging writes (lease and
// term fencing), and after the heal it rejoins as a backup of the new timeline.
// Needs nodes with their own addresses (`pgward up --netns`): on 127.0.0.1 no
// firewall rule can tell one node's traffic from another's.
import { UserError } from '../../errors.ts';
import type { DrillTarget } from '../target.ts';
import type { Scenario } from './types.ts';

/** The partition lasts at least this long, past the election, so the isolated side's fencing is exercised. */
export const PARTITION_MS = 3000;

function levers(target: DrillTarget): { isolate: (node: string) => void; heal: (node: string) => void } {
  if (target.isolate === undefined || target.heal === undefined) {
    throw new UserError(
      'partition-primary cannot run against this cluster: its nodes share 127.0.0.1, so no firewall rule can cut one off',
      'create the cluster with `pgward up --netns` (root: one network namespace per node) and run the drill against it',
    );
  }
  return { isolate: target.isolate.bind(target), heal: target.heal.bind(target) };
}

export const partitionPrimaryScenario: Scenario = {
  name: 'partition-primary',
  description: `cut the primary's node off from the other nodes for at least ${PARTITION_MS / 1000} s (iptables in its network namespace; clients still reach its proxy), then heal`,
  precheck(target) {
    levers(target);
  },
  async run(ctx) {
    const { isolate, heal } = levers(ctx.target);
    const node = ctx.primary;
    const startedAt = performance.now();
    isolate(node);
    ctx.fault('partition-primary', true, `isolate ${node} from the other nodes`);
    return {
      heal: async () => {
        const left = PARTITION_MS - (performance.now() - startedAt);
        if (left > 0) await new Promise((resolve) => setTimeout(resolve, left));
        heal(node);
        ctx.log(`healed the partition of ${node}`);
      },
    };
  },
};
