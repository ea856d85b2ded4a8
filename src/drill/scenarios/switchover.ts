// Planned switchover under load: no client may see an error.
import type { Scenario } from './types.ts';

export const switchoverScenario: Scenario = {
  name: 'switchover',
  description: 'POST /switchover to the most advanced backup while the workload runs',
  async run(ctx) {
    ctx.fault('switchover', true, `switchover away from ${ctx.primary}`);
    const message = await ctx.target.switchover();
    ctx.log(`switchover: ${message}`);
    return { heal: async () => {} };
  },
};
