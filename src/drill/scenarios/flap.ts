// Repeated failovers: kill the primary's PostgreSQL, wait for the next primary to
// take a write and for the cluster to be whole again (the old primary rejoined),
// kill that one too; the cluster must keep one primary at a time. Waiting for a
// whole cluster makes each kill a failover: killing the next primary while the last
// one is still rewinding leaves no backup to promote (a double fault), and its own
// sidecar then restarts it in place in the same timeline.
import { killPostgres } from './kill.ts';
import type { Scenario, ScenarioContext } from './types.ts';

export const FLAPS_PER_ROUND = 3;
/** Bound on the old primary rejoining between two kills (a rewind, or a base backup). */
const WHOLE_TIMEOUT_MS = 120_000;

export const flapScenario: Scenario = {
  name: 'flap',
  description: `${FLAPS_PER_ROUND} kill -9 of the primary's postmaster in a row, each once the previous new primary took a write and the old one rejoined`,
  async run(ctx) {
    let primary = ctx.primary;
    for (let flap = 1; flap <= FLAPS_PER_ROUND; flap++) {
      const status = await ctx.target.status();
      killPostgres(ctx, primary, true, 'flap');
      if (flap < FLAPS_PER_ROUND) {
        primary = await ctx.waitForNewPrimary(status?.term ?? 0);
        await waitWhole(ctx);
        primary = (await ctx.target.status())?.primary ?? primary;
      }
    }
    return { heal: async () => {} };
  },
};

async function waitWhole(ctx: ScenarioContext): Promise<void> {
  const deadline = Date.now() + WHOLE_TIMEOUT_MS;
  let detail = '';
  while (Date.now() < deadline) {
    const answer = await ctx.target.whole();
    if (answer.whole) return;
    detail = answer.detail;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`flap: the old primary did not rejoin within ${WHOLE_TIMEOUT_MS} ms: ${detail}`);
}
