// Whole-node crash of the primary (issue 6): kill -9 of its sidecar and of every
// PostgreSQL process (postmaster, backends, walsenders), as when the machine dies,
// while clients write through every proxy. The backups elect a new primary by
// election timeout, which promotes in a new term; every acknowledged write
// survives; restarted (`pgward up`), the old node demotes its crashed primary by
// pg_rewind and rejoins as a backup streaming the current timeline, and its proxy
// routes to the new primary.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startLocalCluster } from '../support/cluster.ts';
import {
  keepLogsOnFailure,
  settledNewPrimary,
  waitForPrimary,
  waitForStreamingBackup,
} from '../support/failover.ts';
import {
  lostWrites,
  postgresProcesses,
  readTaggedRows,
  servedByOldPrimary,
  signalAll,
  startWritersOnEveryProxy,
  summarize,
  type TaggedWriter,
} from '../support/tagged-writes.ts';
import { waitFor } from '../support/wait.ts';

test('kill -9 of the primary sidecar and all its PostgreSQL processes: a new primary takes writes, nothing acknowledged is lost, the restarted node rejoins as a streaming backup', {
  timeout: 400_000,
}, async (t) => {
  const cluster = await startLocalCluster({ nodes: 3 });
  const writers: TaggedWriter[] = [];
  t.after(async () => {
    for (const writer of writers) await writer.stop().catch(() => {});
    await cluster.stop();
  });
  await keepLogsOnFailure(cluster, async () => {
    const first = await waitForPrimary(cluster);
    const old = first.node;
    const { timeline: oldTimeline } = await startWritersOnEveryProxy(cluster, old, writers);

    const sidecar = old.sidecarPid();
    assert.ok(sidecar !== null);
    const postgres = postgresProcesses(old);
    assert.ok(postgres.length > 0, `${old.name} runs PostgreSQL`);
    // Sidecar first: one left alive would see its PostgreSQL die and hand over cleanly.
    signalAll([sidecar], 'SIGKILL');
    signalAll(postgres, 'SIGKILL');
    const killedAtMs = performance.now();
    const others = cluster.nodes.filter((n) => n !== old);

    const next = await waitForPrimary(cluster, { aboveTerm: first.term, not: old.name, among: others });
    const electedMs = Math.round(performance.now() - killedAtMs);
    const survivors = writers.filter((w) => w.name !== `via-${old.name}`);
    await waitFor(() => survivors.every((w) => w.acknowledged().some((a) => a.sentAtMs > killedAtMs)), {
      timeoutMs: 60_000,
      what: 'writes through the surviving proxies after the crash',
    });

    await cluster.up();
    const restartedAtMs = performance.now();
    await waitForStreamingBackup(cluster, old);
    const viaOld = writers.find((w) => w.name === `via-${old.name}`)!;
    await waitFor(() => viaOld.acknowledged().some((w) => w.sentAtMs > restartedAtMs), {
      timeoutMs: 60_000,
      what: `a write through the restarted ${old.name}'s proxy`,
    });
    for (const writer of writers) await writer.stop();

    const primary = await settledNewPrimary(cluster, old);

    const stored = await readTaggedRows(cluster, primary);
    const writes = writers.flatMap((w) => w.writes);
    const summary =
      `term ${first.term} -> ${next.term} (${next.node.name} writable ${electedMs} ms after the kill), ` +
      `final primary ${primary.name}; writes ${summarize(writes)}; stored ${stored.size}`;
    assert.deepEqual(
      [
        ...lostWrites(writes, stored),
        ...servedByOldPrimary(writes, stored, killedAtMs, { port: old.pgPort, timeline: oldTimeline }),
      ],
      [],
      summary,
    );
    t.diagnostic(summary);
  });
});
