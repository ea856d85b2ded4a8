// The instance's file-level behaviour without running PostgreSQL: config written
// before each start, the follow target it remembers, and refusing foreign data dirs.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { UserError } from '../../src/errors.ts';
import { silentLogger } from '../../src/log.ts';
import { PostgresInstance } from '../../src/postgres/instance.ts';
import { tempDir } from '../support/tmp.ts';

function instance(dataDir: string, clusterName = 'main'): PostgresInstance {
  return new PostgresInstance({
    binaries: { bindir: '/nonexistent', path: (name) => `/nonexistent/${name}` },
    runAs: null,
    dataDir,
    host: '127.0.0.1',
    port: 15432,
    superuser: 'postgres',
    replicationUser: 'pgward_replicator',
    clusterName,
    nodeName: 'node2',
    parameters: { work_mem: '8MB' },
    logFile: '/dev/null',
    logger: silentLogger(),
  });
}

test('a backup config names its primary, slot and application_name; a primary config drops standby.signal', (t) => {
  const dir = tempDir(t);
  const pg = instance(dir);
  pg.writeConfig({ host: '127.0.0.1', port: 4242, slotName: 'pgward_node2' });
  const conf = readFileSync(path.join(dir, 'pgward.conf'), 'utf8');
  assert.match(
    conf,
    /^primary_conninfo = 'host=127\.0\.0\.1 port=4242 user=pgward_replicator application_name=node2'$/m,
  );
  assert.match(conf, /^primary_slot_name = 'pgward_node2'$/m);
  assert.match(conf, /^port = 15432$/m);
  assert.match(conf, /^work_mem = '8MB'$/m);
  assert.ok(pg.isStandby());
  assert.deepEqual(pg.lastFollowTarget(), { host: '127.0.0.1', port: 4242, slotName: 'pgward_node2' });
  assert.match(
    readFileSync(path.join(dir, 'pg_hba.conf'), 'utf8'),
    /^host replication all 127\.0\.0\.1\/32 trust$/m,
  );
  pg.writeConfig(null);
  assert.equal(pg.isStandby(), false);
  assert.equal(pg.lastFollowTarget(), null);
});

test('data dirs of another cluster, or not made by pgward, are refused', (t) => {
  const dir = tempDir(t);
  const pg = instance(dir);
  pg.checkOwnership();
  writeFileSync(path.join(dir, 'PG_VERSION'), '15\n');
  assert.throws(
    () => pg.checkOwnership(),
    (e: unknown) => e instanceof UserError && /did not create/.test(e.message),
  );
  writeFileSync(path.join(dir, 'pgward.cluster'), '{"cluster":"other"}\n');
  assert.throws(() => pg.checkOwnership(), /belongs to pgward cluster 'other', not 'main'.*fix: /);
  instance(dir, 'other').checkOwnership();
});
