// The zombie primary, sidecar only (issue 6): SIGSTOP of the primary's sidecar for
// 3 s while its PostgreSQL keeps running, then SIGCONT. The backups elect a new
// primary; once awake, the old sidecar's proxy must not route a write to its own
// PostgreSQL (its lease ran out while it was frozen, and it learns the new term at
// once), a commit sent straight to the orphaned PostgreSQL is never acknowledged,
// and the old node rejoins as a streaming backup. The checks are in
// test/support/zombie.ts.
import { test } from 'node:test';
import { startLocalCluster } from '../support/cluster.ts';
import { keepLogsOnFailure } from '../support/failover.ts';
import { zombieScenario } from '../support/zombie.ts';

test('SIGSTOP of the primary sidecar for 3 s: a new primary takes over, the woken sidecar routes no write to its PostgreSQL, nothing acknowledged is lost, the old primary rejoins', {
  timeout: 400_000,
}, async (t) => {
  const cluster = await startLocalCluster({ nodes: 3 });
  const scenario = zombieScenario(cluster, 'sidecar');
  t.after(async () => {
    await scenario.cleanup();
    await cluster.stop();
  });
  await keepLogsOnFailure(cluster, async () => {
    t.diagnostic(await scenario.run());
  });
});
