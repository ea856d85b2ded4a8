// Drill scenarios once each, with a short workload, against one real 3-node local
// cluster; the checker must pass. Scenarios share the cluster (it is whole again
// after every drill), which keeps the file within its CI budget. partition-primary
// needs its own network-namespace cluster: test/drill/partition.pg.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatCheckResult } from '../../src/drill/checker.ts';
import { runDrill } from '../../src/drill/runner.ts';
import { findScenario } from '../../src/drill/scenarios/index.ts';
import { LocalClusterTarget } from '../../src/drill/target.ts';
import type { WorkloadKind } from '../../src/drill/workload.ts';
import { startLocalCluster } from '../support/cluster.ts';

const SCENARIOS: Array<[string, WorkloadKind]> = [
  ['kill-postgres', 'mixed'],
  ['kill-node', 'keyed'],
  ['switchover', 'unkeyed'],
  ['pause-primary', 'mixed'],
  ['kill-backup', 'unkeyed'],
  ['flap', 'mixed'],
];

test('drills: each scenario once against a live cluster passes the checker', {
  timeout: 900_000,
}, async (t) => {
  const cluster = await startLocalCluster({ nodes: 3 });
  t.after(() => cluster.stop());
  const target = new LocalClusterTarget(cluster.dir);
  for (const [name, workload] of SCENARIOS) {
    await t.test(name, async () => {
      const scenario = findScenario(name);
      assert.ok(scenario);
      const lines: string[] = [];
      const outcome = await runDrill({
        target,
        scenario,
        rounds: 1,
        workload,
        clients: 3,
        settleMs: 300,
        log: (line) => lines.push(line),
      });
      const summary = `${formatCheckResult(outcome.result)}\n${lines.join('\n')}`;
      assert.equal(outcome.aborted, null, summary);
      assert.equal(outcome.result.ok, true, summary);
      assert.ok(outcome.result.acknowledged > 0, 'the workload wrote something');
      // One result per fault: flap injects several in its one round.
      assert.ok(outcome.result.rounds.length >= 1);
      for (const r of outcome.result.rounds) assert.notEqual(r.rtoMs, null, `${r.fault}: no recovery`);
    });
  }
});
