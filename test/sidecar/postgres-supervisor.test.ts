// PostgresSupervisor with a fake PostgreSQL: a backup that is still starting (not
// yet consistent, so no SQL works) when the primary it should follow moves is
// re-pointed by rewriting its config and reloading the postmaster (SIGHUP), instead
// of waiting out the start bound on a source that will never serve it.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { silentLogger } from '../../src/log.ts';
import type { FollowTarget, PostgresInstance } from '../../src/postgres/instance.ts';
import { PostgresSupervisor } from '../../src/sidecar/postgres-supervisor.ts';
import { waitFor } from '../support/wait.ts';

const node3: FollowTarget = { host: '127.0.0.1', port: 5433, slotName: 'pgward_node1' };
const node2: FollowTarget = { host: '127.0.0.1', port: 5432, slotName: 'pgward_node1' };

function fakeInstance() {
  const written: Array<FollowTarget | null> = [];
  let finishStart: (pid: number) => void = () => {};
  const instance = Object.assign(new EventEmitter(), {
    isRunning: () => false,
    isStandby: () => true,
    postmasterPid: () => 4242,
    writeConfig: (target: FollowTarget | null) => written.push(target),
    start: () =>
      new Promise<number>((resolve) => {
        finishStart = resolve;
      }),
  });
  return {
    instance: instance as unknown as PostgresInstance,
    written,
    finish: (pid: number) => finishStart(pid),
  };
}

test('a backup whose primary moves while it starts is re-pointed by config and SIGHUP', async () => {
  const fake = fakeInstance();
  let primary = node3;
  const signals: Array<[number, string]> = [];
  const supervisor = new PostgresSupervisor({
    instance: fake.instance,
    logger: silentLogger(),
    stateDir: '/nonexistent',
    bootstrapPrimary: false,
    followTarget: () => primary,
    slotsToKeep: () => [],
    startTimeoutMs: 120_000,
    stopTimeoutMs: 1000,
    restartDelayMs: 100,
    signal: (pid, signal) => signals.push([pid, signal]),
  });
  const started = supervisor.startOnce();
  assert.deepEqual(fake.written, [node3]);
  primary = node2;
  await waitFor(() => signals.length === 1, { timeoutMs: 5000, what: 'the re-point' });
  assert.deepEqual(fake.written, [node3, node2]);
  assert.deepEqual(signals, [[4242, 'SIGHUP']]);
  fake.finish(4242);
  assert.equal(await started, 4242);
  // Started: no more re-pointing (the failover layer follows by ALTER SYSTEM from here).
  primary = node3;
  await new Promise((resolve) => setTimeout(resolve, 1200));
  assert.equal(signals.length, 1);
});
