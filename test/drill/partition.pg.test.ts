// The partition-primary drill: against a `pgward up --netns` cluster one round
// passes the checker (nothing acknowledged lost or applied twice, one primary at a
// time); against a cluster on 127.0.0.1 it refuses before any write, saying to use
// `pgward up --netns`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatCheckResult } from '../../src/drill/checker.ts';
import { runDrill } from '../../src/drill/runner.ts';
import { findScenario } from '../../src/drill/scenarios/index.ts';
import { LocalClusterTarget } from '../../src/drill/target.ts';
import { UserError } from '../../src/errors.ts';
import { createLocalCluster } from '../../src/local/create.ts';
import { netnsUnavailable } from '../../src/local/netns.ts';
import { startLocalCluster } from '../support/cluster.ts';
import { tempDir } from '../support/tmp.ts';

const unavailable = netnsUnavailable();

test('partition-primary refuses a 127.0.0.1 cluster, naming pgward up --netns', async (t) => {
  const dir = tempDir(t, 'pgward-partition-refuse-');
  // Created, never started: the refusal comes before the drill touches the cluster.
  await createLocalCluster({ dir, nodes: 3, port: 0 });
  const target = new LocalClusterTarget(dir);
  assert.equal(target.isolate, undefined);
  const scenario = findScenario('partition-primary')!;
  assert.throws(
    () => scenario.precheck!(target),
    (error: unknown) => error instanceof UserError && /pgward up --netns/.test((error as Error).message),
  );
  await assert.rejects(
    runDrill({ target, scenario, rounds: 1, workload: 'unkeyed', clients: 1 }),
    /share 127\.0\.0\.1.*pgward up --netns/,
  );
});

test('partition-primary drill: one round against a netns cluster passes the checker', {
  timeout: 600_000,
  skip: unavailable === null ? false : `needs network namespaces: ${unavailable}`,
}, async (t) => {
  const cluster = await startLocalCluster({ nodes: 3, netns: true });
  t.after(() => cluster.stop());
  const target = new LocalClusterTarget(cluster.dir);
  const lines: string[] = [];
  const outcome = await runDrill({
    target,
    scenario: findScenario('partition-primary')!,
    rounds: 1,
    workload: 'mixed',
    clients: 3,
    settleMs: 300,
    recoveryTimeoutMs: 90_000,
    wholeTimeoutMs: 180_000,
    log: (line) => lines.push(line),
  });
  const summary = `${formatCheckResult(outcome.result)}\n${lines.join('\n')}`;
  t.diagnostic(summary);
  assert.equal(outcome.aborted, null, summary);
  assert.equal(outcome.result.ok, true, summary);
  assert.ok(outcome.result.acknowledged > 0, 'the workload wrote something');
  assert.equal(outcome.result.rounds.length, 1);
  assert.notEqual(outcome.result.rounds[0]!.rtoMs, null);
});
