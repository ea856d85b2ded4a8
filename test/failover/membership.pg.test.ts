// Run-time membership (`pgward member add|remove`) on live clusters: each change is
// a single-server Raft configuration change plus a replicated member-add/remove
// command. Removing a backup takes it out of the Raft quorum and out of the
// synchronous quorum; removing the primary is refused; the change survives a
// restart of every sidecar (their config files still list the old membership);
// a re-added member or witness is a voter again, which a failover that needs its
// vote proves.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startLocalCluster, type TestCluster, type TestNode } from '../support/cluster.ts';
import {
  keepLogsOnFailure,
  primariesByPostgres,
  waitForPrimary,
  waitForStreamingBackup,
} from '../support/failover.ts';
import { killWholeNode } from '../support/processes.ts';
import { waitFor } from '../support/wait.ts';

const TIMEOUT_MS = 500_000;

interface MembershipReport {
  raftMembers: { voters: string[]; witnesses: string[]; learners: string[] } | null;
  members: Array<{ name: string }>;
}

async function membershipOf(node: TestNode): Promise<{ voters: string; witnesses: string; members: string }> {
  const response = await fetch(`${node.apiUrl}/cluster`, { signal: AbortSignal.timeout(2000) });
  const body = (await response.json()) as MembershipReport;
  const sorted = (names: string[] | undefined) => [...(names ?? [])].sort().join(',');
  return {
    voters: sorted(body.raftMembers?.voters),
    witnesses: sorted(body.raftMembers?.witnesses),
    members: sorted(body.members.map((m) => m.name)),
  };
}

/** Waits until every node of `among` reports this Raft configuration and member list. */
async function waitForMembership(
  among: TestNode[],
  want: { voters: string[]; witnesses: string[] },
  what: string,
): Promise<void> {
  const expected = {
    voters: [...want.voters].sort().join(','),
    witnesses: [...want.witnesses].sort().join(','),
    members: [...want.voters, ...want.witnesses].sort().join(','),
  };
  await waitFor(
    async () => {
      for (const node of among) {
        const seen = await membershipOf(node);
        if (JSON.stringify(seen) !== JSON.stringify(expected)) return false;
      }
      return true;
    },
    { timeoutMs: 60_000, intervalMs: 200, what },
  );
}

async function syncNames(cluster: TestCluster, primary: TestNode): Promise<string> {
  const rows = await cluster.sql<{ s: string }>(
    primary,
    "SELECT current_setting('synchronous_standby_names') AS s",
  );
  return rows[0]?.s ?? '';
}

async function ids(cluster: TestCluster, node: TestNode): Promise<number[]> {
  const rows = await cluster.sql<{ id: number }>(node, 'SELECT id FROM acked ORDER BY id');
  return rows.map((r) => r.id);
}

test('3 members: remove a backup (refused for the primary), the quorums shrink and a full restart keeps it; re-added, it streams and its vote elects the next primary', {
  timeout: TIMEOUT_MS,
}, async (t) => {
  const cluster = await startLocalCluster({ nodes: 3 });
  t.after(() => cluster.stop());
  await keepLogsOnFailure(cluster, async () => {
    const first = await waitForPrimary(cluster);
    const primary = first.node;
    const [kept, removed] = cluster.nodes.filter((n) => n !== primary) as [TestNode, TestNode];
    await waitForStreamingBackup(cluster, kept);
    await waitForStreamingBackup(cluster, removed);
    await cluster.sql(primary, 'CREATE TABLE acked (id int PRIMARY KEY)');
    const acked: number[] = [];
    const write = async (node: TestNode, id: number) => {
      await cluster.sql(node, 'INSERT INTO acked VALUES ($1)', [id]);
      acked.push(id);
    };
    for (let id = 1; id <= 10; id++) await write(primary, id);

    const refused = await cluster.pgward('member', 'remove', primary.name, '--dir', cluster.dir);
    assert.notEqual(refused.code, 0, 'removing the primary must be refused');
    assert.match(refused.stderr, /is the primary: switch over first/);

    const removal = await cluster.pgward('member', 'remove', removed.name, '--dir', cluster.dir);
    assert.equal(removal.code, 0, removal.stderr);
    const two = { voters: [primary.name, kept.name], witnesses: [] };
    await waitForMembership([primary, kept], two, `${removed.name} out of the Raft configuration`);
    await waitFor(async () => (await syncNames(cluster, primary)) === `ANY 1 ("${kept.name}")`, {
      timeoutMs: 30_000,
      what: `the synchronous quorum without ${removed.name}`,
    });
    for (let id = 11; id <= 20; id++) await write(primary, id);

    // Every config file still lists the removed member: the membership comes from the Raft log.
    await cluster.down();
    await cluster.up();
    const restarted = await waitForPrimary(cluster, { among: [primary, kept], timeoutMs: 90_000 });
    await waitForMembership([primary, kept], two, 'the membership after a restart of every sidecar');
    await waitFor(
      async () =>
        (await syncNames(cluster, restarted.node)) ===
        `ANY 1 ("${(restarted.node === primary ? kept : primary).name}")`,
      {
        timeoutMs: 60_000,
        what: `the synchronous quorum without ${removed.name} after the restart`,
      },
    );

    const readd = await cluster.pgward(
      'member',
      'add',
      removed.name,
      '--raft-port',
      String(removed.raftPort),
      '--api-port',
      String(removed.apiPort),
      '--pg-port',
      String(removed.pgPort),
      '--proxy-port',
      String(removed.proxyPort),
      '--dir',
      cluster.dir,
    );
    assert.equal(readd.code, 0, readd.stderr);
    const three = { voters: [primary.name, kept.name, removed.name], witnesses: [] };
    await waitForMembership(
      cluster.nodes,
      three,
      `${removed.name} back in the Raft configuration everywhere`,
    );
    await waitForStreamingBackup(cluster, removed);
    const current = restarted.node;
    await waitFor(
      async () => {
        const names = await syncNames(cluster, current);
        return names.includes(`"${removed.name}"`) && names.startsWith('ANY 1');
      },
      { timeoutMs: 60_000, what: `${removed.name} back in the synchronous quorum` },
    );
    for (let id = 21; id <= 30; id++) await write(current, id);

    // With the primary's machine dead, only the re-added member's vote makes a majority.
    killWholeNode(current);
    const survivors = cluster.nodes.filter((n) => n !== current);
    const next = await waitForPrimary(cluster, {
      aboveTerm: restarted.term,
      among: survivors,
      timeoutMs: 90_000,
    });
    assert.deepEqual(await ids(cluster, next.node), acked, 'every acknowledged write survived');
    await cluster.up();
    await waitForStreamingBackup(cluster, current);
    assert.deepEqual(await primariesByPostgres(cluster), [next.node.name]);
    t.diagnostic(
      `removed and re-added ${removed.name}; term ${restarted.term} -> ${next.term}, primary ${next.node.name}`,
    );
  });
});

test('2 members + witness: remove the witness and add it back; its vote then elects the backup when the primary dies', {
  timeout: TIMEOUT_MS,
}, async (t) => {
  const cluster = await startLocalCluster({ nodes: 2, witness: true });
  t.after(() => cluster.stop());
  await keepLogsOnFailure(cluster, async () => {
    const witness = cluster.node('witness');
    const first = await waitForPrimary(cluster);
    const old = first.node;
    const backup = cluster.nodes.find((n) => n !== old && n !== witness)!;
    await waitForStreamingBackup(cluster, backup);
    const databases = [old, backup];
    const names = databases.map((n) => n.name);

    const removal = await cluster.pgward('member', 'remove', 'witness', '--dir', cluster.dir);
    assert.equal(removal.code, 0, removal.stderr);
    await waitForMembership(
      databases,
      { voters: names, witnesses: [] },
      'the witness out of the configuration',
    );

    const addWitness = () =>
      cluster.pgward(
        'member',
        'add',
        'witness',
        '--witness',
        '--raft-port',
        String(witness.raftPort),
        '--api-port',
        String(witness.apiPort),
        '--dir',
        cluster.dir,
      );
    const add = await addWitness();
    assert.equal(add.code, 0, add.stderr);
    await waitForMembership(
      cluster.nodes,
      { voters: names, witnesses: ['witness'] },
      'the witness back, everywhere',
    );
    const again = await addWitness();
    assert.notEqual(again.code, 0, 'adding a member twice is refused');

    await cluster.sql(old, 'CREATE TABLE acked (id int PRIMARY KEY)');
    const acked: number[] = [];
    for (let id = 1; id <= 10; id++) {
      await cluster.sql(old, 'INSERT INTO acked VALUES ($1)', [id]);
      acked.push(id);
    }
    killWholeNode(old);
    const next = await waitForPrimary(cluster, {
      aboveTerm: first.term,
      among: [backup, witness],
      timeoutMs: 90_000,
    });
    assert.equal(next.node.name, backup.name);
    assert.deepEqual(await ids(cluster, backup), acked);
    await cluster.up();
    await waitForStreamingBackup(cluster, old);
    assert.deepEqual(await primariesByPostgres(cluster), [backup.name]);
  });
});
