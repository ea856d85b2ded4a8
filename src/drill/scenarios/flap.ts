// Repeated failovers: kill the primary's PostgreSQL, wait only for the next
// primary, kill that one too; the cluster must keep one primary at a time.
import { killPostgres } from './kill.ts';
import type { Scenario } from './types.ts';

export const FLAPS_PER_ROUND = 3;

export const flapScenario: Scenario = {
  name: 'flap',
  description: `${FLAPS_PER_ROUND} kill -9 of the primary's postmaster in a row, each as soon as a new primary took a write`,
  async run(ctx) {
    let primary = ctx.primary;
    for (let flap = 1; flap <= FLAPS_PER_ROUND; flap++) {
      const status = await ctx.target.status();
      killPostgres(ctx, primary, true, 'flap');
      if (flap < FLAPS_PER_ROUND) primary = await ctx.waitForNewPrimary(status?.term ?? 0);
    }
    return { heal: async () => {} };
  },
};
