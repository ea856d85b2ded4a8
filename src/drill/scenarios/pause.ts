// The zombie primary: SIGSTOP its sidecar and PostgreSQL (all its processes) long
// enough for the others to elect a new primary, then SIGCONT. It must not
// acknowledge a write after waking and must rejoin as a backup.
import type { Scenario } from './types.ts';

export const PAUSE_MS = 3000;

export const pausePrimaryScenario: Scenario = {
  name: 'pause-primary',
  description: `SIGSTOP the primary's sidecar and PostgreSQL for ${PAUSE_MS / 1000} s, then SIGCONT`,
  async run(ctx) {
    const sidecar = ctx.target.sidecarPid(ctx.primary);
    const postgres = ctx.target.postmasterPids(ctx.primary);
    if (sidecar === null) throw new Error(`${ctx.primary} has no running sidecar to pause`);
    const pids = [sidecar, ...postgres];
    ctx.target.signal(pids, 'SIGSTOP');
    ctx.fault('pause-primary', true, `SIGSTOP ${pids.length} processes of ${ctx.primary}`);
    // Resume on schedule whatever the runner is doing; heal() waits for it.
    const resumed = new Promise<void>((resolve) =>
      setTimeout(() => {
        ctx.target.signal(pids, 'SIGCONT');
        resolve();
      }, PAUSE_MS),
    );
    return { heal: () => resumed };
  },
};
