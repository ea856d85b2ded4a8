// The zombie primary, whole node (issue 6, the pause-primary drill): SIGSTOP of the
// primary's sidecar, postmaster and every PostgreSQL process for 3 s, then SIGCONT.
// The backups elect a new primary; once awake, the old node must not acknowledge a
// write (its lease ran out while it was frozen; no backup follows it any more) and
// rejoins as a streaming backup. The checks are in test/support/zombie.ts.
import { test } from 'node:test';
import { startLocalCluster } from '../support/cluster.ts';
import { keepLogsOnFailure } from '../support/failover.ts';
import { zombieScenario } from '../support/zombie.ts';

test('SIGSTOP of the whole primary node for 3 s: a new primary takes over, the woken node acknowledges no write, nothing acknowledged is lost, the old primary rejoins', {
  timeout: 400_000,
}, async (t) => {
  const cluster = await startLocalCluster({ nodes: 3 });
  const scenario = zombieScenario(cluster, 'node');
  t.after(async () => {
    await scenario.cleanup();
    await cluster.stop();
  });
  await keepLogsOnFailure(cluster, async () => {
    t.diagnostic(await scenario.run());
  });
});
