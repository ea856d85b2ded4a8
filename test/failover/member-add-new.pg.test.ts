// `pgward member add` of a brand-new database member on a live 2-member cluster:
// its sidecar starts with an empty data directory and an empty Raft log, clones the
// primary with pg_basebackup through the slot the primary made for it, streams,
// enters the synchronous quorum, and is a voter: with the primary's machine dead,
// only its vote makes the majority that elects the other backup.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import YAML from 'yaml';
import type { LocalNode } from '../../src/local/layout.ts';
import { isSidecarOf, spawnSidecar } from '../../src/local/processes.ts';
import { isAlive, readPostmasterPid } from '../../src/postgres/instance.ts';
import { startLocalCluster, type TestNode } from '../support/cluster.ts';
import { keepLogsOnFailure, primariesByPostgres, waitForPrimary } from '../support/failover.ts';
import { freePorts } from '../support/ports.ts';
import { killAll, postgresTree } from '../support/processes.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';
import { waitFor } from '../support/wait.ts';

async function sql<Row extends pg.QueryResultRow>(port: number, text: string): Promise<Row[]> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.query<Row>(text)).rows;
  } finally {
    await client.end().catch(() => {});
  }
}

test('a brand-new database member added at run time clones the primary, streams, joins the synchronous quorum and votes', {
  timeout: 500_000,
}, async (t) => {
  const cluster = await startLocalCluster({ nodes: 2 });
  const dir = makeTempDir('pgward-newmember-');
  let node3: LocalNode | null = null;
  let sidecar: number | null = null;
  t.after(async () => {
    if (node3 !== null && sidecar !== null && isSidecarOf(sidecar, node3)) {
      process.kill(sidecar, 'SIGTERM');
      await waitFor(() => !isAlive(sidecar!), { timeoutMs: 60_000, what: 'node3 sidecar to stop' }).catch(
        () => killAll([sidecar!]),
      );
    }
    const postmaster = node3 === null ? null : readPostmasterPid(node3.pgDataDir);
    if (postmaster !== null) killAll(postgresTree(postmaster));
    await cluster.stop();
    removeTempDir(dir);
  });
  await keepLogsOnFailure(cluster, async () => {
    const first = await waitForPrimary(cluster);
    const primary = first.node;
    const other = cluster.nodes.find((n) => n !== primary) as TestNode;
    const [pgPort, apiPort, raftPort, proxyPort, readOnlyPort] = await freePorts(5);
    const nodeDir = path.join(dir, 'node3');
    mkdirSync(nodeDir, { recursive: true, mode: 0o755 });
    node3 = {
      name: 'node3',
      dir: nodeDir,
      configFile: path.join(nodeDir, 'config.yaml'),
      pgDataDir: path.join(nodeDir, 'pgdata'),
      pgPort: pgPort!,
      proxyPort: proxyPort!,
      readOnlyPort: readOnlyPort!,
      apiPort: apiPort!,
      raftPort: raftPort!,
    };
    // Its config: the cluster's (from node1's file) plus itself, naming the current primary to clone.
    const base = YAML.parse(readFileSync(primary.configFile, 'utf8')) as {
      members: unknown[];
      postgres: Record<string, unknown>;
      proxy: Record<string, unknown>;
      raft: Record<string, unknown>;
      api: Record<string, unknown>;
    };
    const entry = { name: 'node3', host: '127.0.0.1', raftPort, apiPort, pgPort, proxyPort, readOnlyPort };
    const config = {
      ...base,
      node: { name: 'node3', dataDir: nodeDir },
      members: [...base.members, entry],
      bootstrap: { primary: primary.name },
      postgres: { ...base.postgres, dataDir: node3.pgDataDir, port: pgPort },
      proxy: { ...base.proxy, port: proxyPort, readOnlyPort },
      raft: { ...base.raft, port: raftPort },
      api: { ...base.api, port: apiPort },
    };
    writeFileSync(node3.configFile, YAML.stringify(config), { mode: 0o600 });

    const add = await cluster.pgward(
      'member',
      'add',
      'node3',
      '--raft-port',
      String(raftPort),
      '--api-port',
      String(apiPort),
      '--pg-port',
      String(pgPort),
      '--proxy-port',
      String(proxyPort),
      '--dir',
      cluster.dir,
    );
    assert.equal(add.code, 0, add.stderr);
    sidecar = spawnSidecar(node3);

    await waitFor(
      async () => {
        const rows = await sql<{ r: boolean; s: string | null }>(
          pgPort!,
          `SELECT pg_is_in_recovery() AS r, (SELECT status FROM pg_stat_wal_receiver) AS s`,
        );
        return rows[0]?.r === true && rows[0]?.s === 'streaming';
      },
      { timeoutMs: 180_000, intervalMs: 250, what: 'node3 cloned and streaming' },
    );
    await waitFor(
      async () => {
        const rows = await sql<{ s: string }>(
          primary.pgPort,
          "SELECT current_setting('synchronous_standby_names') AS s",
        );
        return rows[0]?.s.includes('"node3"') === true;
      },
      { timeoutMs: 60_000, what: 'node3 in the synchronous quorum' },
    );
    await waitFor(
      async () => {
        for (const url of [primary.apiUrl, other.apiUrl, `http://127.0.0.1:${apiPort}`]) {
          const body = (await (await fetch(`${url}/cluster`)).json()) as {
            raftMembers: { voters: string[] };
          };
          if (
            [...body.raftMembers.voters].sort().join(',') !==
            [primary.name, other.name, 'node3'].sort().join(',')
          )
            return false;
        }
        return true;
      },
      { timeoutMs: 60_000, what: 'three voters everywhere, node3 included' },
    );

    await cluster.sql(primary, 'CREATE TABLE acked (id int PRIMARY KEY)');
    const acked: number[] = [];
    for (let id = 1; id <= 10; id++) {
      await cluster.sql(primary, 'INSERT INTO acked VALUES ($1)', [id]);
      acked.push(id);
    }
    // The primary's machine dies: the other backup and node3 are 2 of 3 votes.
    const pid = primary.sidecarPid();
    const postmaster = primary.postmasterPid();
    assert.ok(pid !== null && postmaster !== null);
    const tree = postgresTree(postmaster);
    process.kill(pid, 'SIGKILL');
    killAll(tree);
    const next = await waitFor(
      async () => {
        for (const url of [other.apiUrl, `http://127.0.0.1:${apiPort}`]) {
          const body = (await (
            await fetch(`${url}/cluster`, { signal: AbortSignal.timeout(2000) })
          ).json()) as {
            reportedBy: string;
            writablePrimary: string | null;
            term: number;
          };
          if (body.writablePrimary === body.reportedBy && body.term > first.term) return body.reportedBy;
        }
        return undefined;
      },
      { timeoutMs: 90_000, intervalMs: 100, what: 'a new primary among the survivors' },
    );
    const port = next === 'node3' ? pgPort! : other.pgPort;
    const rows = await sql<{ id: number }>(port, 'SELECT id FROM acked ORDER BY id');
    assert.deepEqual(
      rows.map((r) => r.id),
      acked,
    );
    const writable = (await primariesByPostgres(cluster)).filter((n) => n !== primary.name);
    const node3Writable = (await sql<{ r: boolean }>(pgPort!, 'SELECT NOT pg_is_in_recovery() AS r'))[0]?.r;
    assert.equal(writable.length + (node3Writable ? 1 : 0), 1, 'exactly one writable PostgreSQL');
    t.diagnostic(`term ${first.term} -> new primary ${next} with node3's vote`);
  });
});
