// SyncStandbyManager with a fake PostgreSQL: a primary that may not write (its lease
// gate is shut, e.g. a sidecar woken from a freeze before it hears of the new term)
// never loosens the synchronous quorum; once it may, the change goes out.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { silentLogger } from '../../src/log.ts';
import type { PostgresInstance } from '../../src/postgres/instance.ts';
import type { ProbeResult } from '../../src/postgres/probe.ts';
import { SyncStandbyManager } from '../../src/sidecar/sync-manager.ts';

function fakeInstance(statements: string[]): PostgresInstance {
  return {
    query: async (sql: string) => {
      statements.push(sql);
      return { rows: [] };
    },
    reload: async () => {},
  } as unknown as PostgresInstance;
}

/** A primary's probe that sees no streaming backup (they follow a new primary now). */
const alone: ProbeResult = {
  atMs: 0,
  role: 'primary',
  currentLsn: 100n,
  flushLsn: 100n,
  receiveLsn: null,
  replayLsn: null,
  lagBytes: 0,
  walReceiverStatus: null,
  replication: [],
  synchronousStandbyNames: 'ANY 1 ("node2", "node3")',
};

test('durability degrade: a primary whose lease gate is shut does not drop its synchronous quorum', async () => {
  const statements: string[] = [];
  let writable = false;
  const manager = new SyncStandbyManager({
    instance: fakeInstance(statements),
    logger: silentLogger(),
    durability: 'degrade',
    backups: () => ['node2', 'node3'],
    mayChange: () => writable,
  });
  manager.onProbe(alone);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(statements.length, 0, 'nothing changed while the node may not write');
  writable = true;
  manager.onProbe(alone);
  await new Promise((resolve) => setImmediate(resolve));
  assert.ok(
    statements.some((s) => s.includes("synchronous_standby_names = ''")),
    `degraded once it may write: ${statements.join('; ')}`,
  );
});
