// `pgward down`: stops every process `up` started. Sidecars get SIGTERM and stop
// their PostgreSQL themselves; past the bound they are killed and any postmaster
// left is stopped by pid (fast, then immediate, then SIGKILL). Verified by pid.
import { UserError } from '../errors.ts';
import { isPostmasterOf, queryOnce, readPostmasterPid } from '../postgres/instance.ts';
import { type LocalCluster, nodeHost, readState, writeState } from './layout.ts';
import { removeNetwork } from './netns.ts';
import { isSidecarOf, sendSignal, waitAllExit } from './processes.ts';

/** Nodes whose PostgreSQL runs as a primary right now (empty when none answers). */
async function primaryNodes(cluster: LocalCluster): Promise<string[]> {
  const answers = await Promise.all(
    cluster.nodes.map(async (node) => {
      if (readPostmasterPid(node.pgDataDir) === null) return null;
      try {
        const rows = await queryOnce<{ primary: boolean }>(
          {
            host: nodeHost(node),
            port: node.pgPort,
            user: 'postgres',
            database: 'postgres',
            connectionTimeoutMillis: PRIMARY_QUERY_TIMEOUT_MS,
            query_timeout: PRIMARY_QUERY_TIMEOUT_MS,
          },
          'SELECT NOT pg_is_in_recovery() AS primary',
        );
        return rows[0]?.primary === true ? node.name : null;
      } catch {
        return null;
      }
    }),
  );
  return answers.filter((name): name is string => name !== null);
}

export interface DownOptions {
  /** Bound on the sidecars' clean shutdown before SIGKILL. */
  timeoutMs?: number;
  log?: (line: string) => void;
}

export interface DownResult {
  /** Pids that were running and are now gone. */
  stopped: number[];
}

const PRIMARY_QUERY_TIMEOUT_MS = 3000;

export async function downLocalCluster(
  cluster: LocalCluster,
  options: DownOptions = {},
): Promise<DownResult> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const log = options.log ?? (() => {});
  const state = readState(cluster.dir);
  const sidecars: number[] = [];
  const postmasters: number[] = [];
  const primaries = new Set(await primaryNodes(cluster));
  // Backups first, the primary last: stopping the primary while backups run would make
  // them fail over, and the next `up` should find the newest data where it left it.
  const waves = [
    cluster.nodes.filter((n) => !primaries.has(n.name)),
    cluster.nodes.filter((n) => primaries.has(n.name)),
  ];
  for (const node of cluster.nodes) {
    const postmaster = readPostmasterPid(node.pgDataDir);
    if (postmaster !== null) postmasters.push(postmaster);
  }
  for (const wave of waves) {
    const owned = wave.filter((node) => isSidecarOf(state.sidecars[node.name], node));
    const pids = owned.map((node) => state.sidecars[node.name]!);
    const alive = (pid: number) => isSidecarOf(pid, owned[pids.indexOf(pid)]!);
    sidecars.push(...pids);
    for (const pid of pids) sendSignal(pid, 'SIGTERM');
    const stubborn = await waitAllExit(pids, timeoutMs, alive);
    for (const pid of stubborn) {
      log(`sidecar ${pid} did not stop within ${timeoutMs} ms; killing it`);
      sendSignal(pid, 'SIGKILL');
    }
    await waitAllExit(stubborn, 5000, alive);
  }
  // Sidecars stop their PostgreSQL; one is left only when its sidecar was gone or killed.
  // Pids are re-read and re-checked against their data dir: a dead postmaster's pid may
  // already belong to another process.
  const postmasterOf = new Map<number, string>();
  for (const node of cluster.nodes) {
    const pid = readPostmasterPid(node.pgDataDir);
    if (pid !== null) postmasterOf.set(pid, node.pgDataDir);
  }
  const isOurPostmaster = (pid: number) => isPostmasterOf(pid, postmasterOf.get(pid)!);
  let left = await waitAllExit([...postmasterOf.keys()], 5000, isOurPostmaster);
  for (const [signal, boundMs] of [
    ['SIGINT', 30_000],
    ['SIGQUIT', 5000],
    ['SIGKILL', 5000],
  ] as const) {
    if (left.length === 0) break;
    for (const pid of left) sendSignal(pid, signal);
    left = await waitAllExit(left, boundMs, isOurPostmaster);
  }
  if (left.length > 0) throw new Error(`postmasters ${left.join(', ')} survived SIGKILL`);
  writeState(cluster.dir, { sidecars: {} });
  // Nothing runs in the namespaces any more: remove them, their veths and the bridge.
  if (cluster.network !== undefined) {
    const problems = await removeNetwork(cluster.network);
    if (problems.length > 0) {
      throw new UserError(
        `pgward down stopped every process but could not remove ${problems.join(', ')}`,
        `run pgward down --dir ${cluster.dir} again, or remove them with ip netns del / ip link del`,
      );
    }
    log(`removed the network namespaces and bridge ${cluster.network.bridge}`);
  }
  return { stopped: [...sidecars, ...postmasters] };
}
