// bench:raft: simulator throughput, then a real 3-process group on loopback with
// real fsync: commit latency and election time after kill -9 of the leader.
// Writes bench/results/raft.json. Run: npm run bench:raft [-- --runs 20 --commits 500]
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_TIMING, ProcessCluster, type RaftProcess } from '../test/raft/support/process-cluster.ts';
import { runSeed } from '../test/sim/simulator.ts';
import { freePorts } from '../test/support/ports.ts';
import { waitFor } from '../test/support/wait.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '20' },
    commits: { type: 'string', default: '500' },
    seeds: { type: 'string', default: '40' },
  },
});
const runs = Number(values.runs);
const commits = Number(values.commits);
const seeds = Number(values.seeds);
const timeoutMs = 60_000;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function summarize(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  const round = (v: number) => Math.round(v * 100) / 100;
  return {
    count: sorted.length,
    p50Ms: round(percentile(sorted, 50)),
    p90Ms: round(percentile(sorted, 90)),
    p99Ms: round(percentile(sorted, 99)),
    maxMs: round(sorted.at(-1) ?? Number.NaN),
  };
}

function simulator() {
  let events = 0;
  const startMs = performance.now();
  for (let seed = 1; seed <= seeds; seed++) events += runSeed({ seed }).events;
  const wallMs = performance.now() - startMs;
  return { seeds, events, wallMs: Math.round(wallMs), eventsPerSec: Math.round((events / wallMs) * 1000) };
}

async function commitLatency(leader: RaftProcess) {
  await leader.request('bench 20', timeoutMs);
  const reply = await leader.request(`bench ${commits}`, timeoutMs * 4);
  if (!reply.ok) throw new Error(`bench on the leader failed: ${reply.error}`);
  return summarize(reply.latenciesMs as number[]);
}

/** Kills the leader, times the first new leader and its first valid lease, restarts the victim. */
async function electionRun(cluster: ProcessCluster): Promise<{ electedMs: number; leasedMs: number }> {
  const [leaderId, leader] = await cluster.leader(timeoutMs, { leased: true });
  const others = [...cluster.nodes].filter(([id]) => id !== leaderId).map(([, n]) => n);
  const marks = others.map((n) => n.events.length);
  const killedAtMs = Date.now();
  await leader.kill9();
  const since = (n: RaftProcess, i: number) => n.events.slice(marks[i]);
  const first = (pick: (n: RaftProcess, i: number) => number | undefined) =>
    waitFor(
      () => {
        const times = others.map(pick).filter((v): v is number => v !== undefined);
        return times.length > 0 ? Math.min(...times) : undefined;
      },
      { timeoutMs, intervalMs: 5, what: 'the new leader' },
    );
  const electedAt = await first(
    (n, i) =>
      since(n, i).find((e) => e.event === 'change' && e.role === 'leader')?.wallMs as number | undefined,
  );
  const leasedAt = await first(
    (n, i) => since(n, i).find((e) => e.event === 'lease' && e.leased)?.wallMs as number | undefined,
  );
  const restarted = cluster.spawn(leaderId);
  await restarted.started(timeoutMs);
  // Let the restarted node outlive its boot vote refusal (E) and follow, so runs are independent.
  const upSinceMs = Date.now();
  await waitFor(
    async () =>
      Date.now() - upSinceMs > 3 * DEFAULT_TIMING.electionTicks * DEFAULT_TIMING.tickMs &&
      (await restarted.status()).leader !== '',
    { timeoutMs, intervalMs: 50, what: 'the restarted node to follow' },
  );
  return { electedMs: electedAt - killedAtMs, leasedMs: leasedAt - killedAtMs };
}

async function main(): Promise<void> {
  const loadAtStart = os.loadavg()[0];
  console.log(`simulator: ${seeds} seeds...`);
  const sim = simulator();
  console.log(sim);

  const root = await mkdtemp(path.join(os.tmpdir(), 'pgward-bench-raft-'));
  const ids = ['n1', 'n2', 'n3'];
  const ports = await freePorts(ids.length);
  const cluster = new ProcessCluster(root, new Map(ids.map((id, i) => [id, ports[i]!])));
  try {
    await cluster.startAll(timeoutMs);
    const [, leader] = await cluster.leader(timeoutMs, { leased: true });
    console.log(`commit latency: ${commits} sequential proposals on the leader...`);
    const latency = await commitLatency(leader);
    console.log(latency);

    const elected: number[] = [];
    const leased: number[] = [];
    for (let run = 1; run <= runs; run++) {
      const r = await electionRun(cluster);
      elected.push(r.electedMs);
      leased.push(r.leasedMs);
      console.log(
        `election run ${run}/${runs}: leader after ${r.electedMs} ms, lease after ${r.leasedMs} ms`,
      );
    }
    const election = { ...summarize(elected), samples: elected };
    const lease = { ...summarize(leased), samples: leased };
    const result = {
      benchmark: 'raft',
      at: new Date().toISOString(),
      node: process.version,
      cpus: os.cpus().length,
      // The machine is shared; latency and election figures mean little without this.
      loadAverage1m: { atStart: loadAtStart, atEnd: os.loadavg()[0] },
      timing: DEFAULT_TIMING,
      simulator: sim,
      commitLatency: {
        ...latency,
        note: 'sequential proposals on the leader of 3 processes, loopback TCP, fsync',
      },
      electionAfterKill9: {
        newLeader: election,
        newLeaseholder: lease,
        targetP99Ms: 1000,
        targetMet: election.p99Ms <= 1000,
      },
    };
    await mkdir(path.join(import.meta.dirname, 'results'), { recursive: true });
    const out = path.join(import.meta.dirname, 'results', 'raft.json');
    await writeFile(out, `${JSON.stringify(result, null, 2)}\n`);
    console.log(JSON.stringify({ ...result, electionAfterKill9: { ...result.electionAfterKill9 } }, null, 2));
    console.log(`wrote ${out}`);
  } finally {
    await cluster.stopAll();
    await rm(root, { recursive: true, force: true });
  }
}

await main();
