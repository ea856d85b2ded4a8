// Failover benchmark (`npm run bench:failover [-- --rounds N]`): a real local
// 3-node cluster with a write load through the proxies.
//   postgres-crash: kill -9 of the primary's postmaster; RTO = kill → first write
//                   started after the kill that commits through a proxy.
//   node-crash:     kill -9 of the primary's sidecar and postmaster; same RTO; the
//                   node is restarted (pgward up) before the next round.
//   switchover:     POST /switchover under load; pause = longest gap between two
//                   committed writes around it; errors counted.
// Prints p50/p99 and writes bench/results/failover.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import pg from 'pg';
import { startLocalCluster, type TestCluster, type TestNode } from '../test/support/cluster.ts';
import { waitForPrimary, waitForStreamingBackup } from '../test/support/failover.ts';

const rounds = Number(process.argv[process.argv.indexOf('--rounds') + 1] ?? 0) || 20;
const ATTEMPT_TIMEOUT_MS = 5000;

interface Sample {
  ms: number;
  errors: number;
  /** Switchovers answered with an error (they must be 0). */
  failed?: number;
}

/** Commits one row through some proxy, trying the live nodes in turn; resolves at the first commit. */
async function firstCommit(
  cluster: TestCluster,
  nodes: () => TestNode[],
  deadlineMs: number,
): Promise<number> {
  let turn = 0;
  let lastError = 'none';
  while (performance.now() < deadlineMs) {
    const candidates = nodes();
    const node = candidates[turn++ % candidates.length]!;
    const client = new pg.Client({
      connectionString: node.proxyUrl,
      connectionTimeoutMillis: ATTEMPT_TIMEOUT_MS,
      query_timeout: ATTEMPT_TIMEOUT_MS,
    });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('INSERT INTO bench_writes DEFAULT VALUES');
      return performance.now();
    } catch (error) {
      lastError = `${node.name}: ${(error as Error).message}`;
      await new Promise((resolve) => setTimeout(resolve, 10));
    } finally {
      await client.end().catch(() => {});
    }
  }
  throw new Error(`no write committed through ${cluster.dir} before the deadline (last error ${lastError})`);
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

function summary(samples: Sample[]) {
  const ms = samples.map((s) => s.ms);
  return {
    rounds: samples.length,
    p50Ms: Math.round(percentile(ms, 50)),
    p99Ms: Math.round(percentile(ms, 99)),
    maxMs: Math.round(Math.max(...ms)),
    samplesMs: ms.map(Math.round),
  };
}

async function crashRound(cluster: TestCluster, wholeNode: boolean): Promise<Sample> {
  const primary = await waitForPrimary(cluster);
  const others = () => cluster.nodes.filter((n) => n.name !== primary.node.name);
  await firstCommit(cluster, others, performance.now() + 60_000);
  const pid = primary.node.postmasterPid();
  const sidecar = primary.node.sidecarPid();
  if (pid === null || sidecar === null)
    throw new Error(`${primary.node.name} has no running postmaster/sidecar`);
  const killedAt = performance.now();
  if (wholeNode) process.kill(sidecar, 'SIGKILL');
  process.kill(pid, 'SIGKILL');
  const committedAt = await firstCommit(cluster, others, killedAt + 60_000);
  if (wholeNode) await cluster.up();
  await waitForStreamingBackup(cluster, primary.node, 180_000);
  return { ms: committedAt - killedAt, errors: 0 };
}

async function switchoverRound(cluster: TestCluster): Promise<Sample> {
  const primary = await waitForPrimary(cluster);
  let running = true;
  let errors = 0;
  const commits: number[] = [];
  const load = (async () => {
    while (running) {
      try {
        commits.push(await firstCommit(cluster, () => cluster.nodes, performance.now() + ATTEMPT_TIMEOUT_MS));
      } catch {
        errors++;
      }
    }
  })();
  await new Promise((resolve) => setTimeout(resolve, 500));
  const target = cluster.nodes.find((n) => n.name !== primary.node.name)!;
  const response = await fetch(`${primary.node.apiUrl}/switchover`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${cluster.apiToken}` },
    body: JSON.stringify({ to: target.name }),
  });
  // A failed switchover is a result, not a crash of the benchmark: counted, and the
  // round still ends with whichever primary the cluster settles on.
  const failed = response.ok ? null : await response.text();
  if (failed !== null) process.stdout.write(`switchover failed: ${failed}\n`);
  const next =
    failed === null
      ? await waitForPrimary(cluster, { aboveTerm: primary.term, not: primary.node.name })
      : await waitForPrimary(cluster);
  await new Promise((resolve) => setTimeout(resolve, 500));
  running = false;
  await load;
  let gap = 0;
  for (let i = 1; i < commits.length; i++) gap = Math.max(gap, commits[i]! - commits[i - 1]!);
  for (const node of cluster.nodes) {
    if (node !== next.node) await waitForStreamingBackup(cluster, node, 180_000);
  }
  return { ms: gap, errors, failed: failed === null ? 0 : 1 };
}

async function main(): Promise<void> {
  const cluster = await startLocalCluster({ nodes: 3 });
  try {
    const first = await waitForPrimary(cluster);
    await cluster.sql(
      first.node,
      'CREATE TABLE bench_writes (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())',
    );
    const results: Record<string, ReturnType<typeof summary> & { errors?: number; failed?: number }> = {};
    for (const [name, run] of [
      ['postgresCrash', () => crashRound(cluster, false)],
      ['nodeCrash', () => crashRound(cluster, true)],
      ['switchover', () => switchoverRound(cluster)],
    ] as const) {
      const samples: Sample[] = [];
      for (let i = 0; i < rounds; i++) {
        const sample = await run();
        samples.push(sample);
        process.stdout.write(`${name} round ${i + 1}/${rounds}: ${Math.round(sample.ms)} ms\n`);
      }
      results[name] = {
        ...summary(samples),
        errors: samples.reduce((n, s) => n + s.errors, 0),
        ...(name === 'switchover' ? { failed: samples.reduce((n, s) => n + (s.failed ?? 0), 0) } : {}),
      };
      process.stdout.write(`${name}: p50 ${results[name]!.p50Ms} ms, p99 ${results[name]!.p99Ms} ms\n`);
    }
    mkdirSync('bench/results', { recursive: true });
    writeFileSync(
      'bench/results/failover.json',
      `${JSON.stringify({ date: new Date().toISOString(), nodes: 3, rounds, results }, null, 2)}\n`,
    );
    process.stdout.write('wrote bench/results/failover.json\n');
  } finally {
    await cluster.stop();
  }
}

await main();
