// The zombie primary with `durability: degrade`: the same freeze of the primary's
// sidecar as pause-sidecar.pg.test.ts. Once awake and before it hears of the new
// term, its sidecar sees no streaming backup; degrading to asynchronous commit then
// would release a commit waiting on its PostgreSQL (acknowledged in the old term,
// after a new primary took over, then rewound away). It must not.
import { test } from 'node:test';
import { startLocalCluster } from '../support/cluster.ts';
import { keepLogsOnFailure } from '../support/failover.ts';
import { zombieScenario } from '../support/zombie.ts';

test('durability degrade: the woken zombie primary does not degrade to async and acknowledges nothing', {
  timeout: 400_000,
}, async (t) => {
  const cluster = await startLocalCluster({ nodes: 3, durability: 'degrade' });
  const scenario = zombieScenario(cluster, 'sidecar');
  t.after(async () => {
    await scenario.cleanup();
    await cluster.stop();
  });
  await keepLogsOnFailure(cluster, async () => {
    t.diagnostic(await scenario.run());
  });
});
