// `pgward down`: stops every process `up` started. Sidecars get SIGTERM and stop
// their PostgreSQL themselves; past the bound they are killed and any postmaster
// left is stopped by pid (fast, then immediate, then SIGKILL). Verified by pid.
import { readPostmasterPid } from '../postgres/instance.ts';
import { type LocalCluster, readState, writeState } from './layout.ts';
import { isSidecarOf, sendSignal, waitAllExit } from './processes.ts';

export interface DownOptions {
  /** Bound on the sidecars' clean shutdown before SIGKILL. */
  timeoutMs?: number;
  log?: (line: string) => void;
}

export interface DownResult {
  /** Pids that were running and are now gone. */
  stopped: number[];
}

export async function downLocalCluster(
  cluster: LocalCluster,
  options: DownOptions = {},
): Promise<DownResult> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const log = options.log ?? (() => {});
  const state = readState(cluster.dir);
  const sidecars: number[] = [];
  const postmasters: number[] = [];
  for (const node of cluster.nodes) {
    const pid = state.sidecars[node.name];
    if (pid !== undefined && isSidecarOf(pid, node)) sidecars.push(pid);
    const postmaster = readPostmasterPid(node.pgDataDir);
    if (postmaster !== null) postmasters.push(postmaster);
  }
  for (const pid of sidecars) sendSignal(pid, 'SIGTERM');
  const stubborn = await waitAllExit(sidecars, timeoutMs);
  for (const pid of stubborn) {
    log(`sidecar ${pid} did not stop within ${timeoutMs} ms; killing it`);
    sendSignal(pid, 'SIGKILL');
  }
  await waitAllExit(stubborn, 5000);
  // Sidecars stop their PostgreSQL; these are left only when a sidecar was gone or killed.
  let left = await waitAllExit(postmasters, 5000);
  for (const [signal, boundMs] of [
    ['SIGINT', 30_000],
    ['SIGQUIT', 5000],
    ['SIGKILL', 5000],
  ] as const) {
    if (left.length === 0) break;
    for (const pid of left) sendSignal(pid, signal);
    left = await waitAllExit(left, boundMs);
  }
  if (left.length > 0) throw new Error(`postmasters ${left.join(', ')} survived SIGKILL`);
  writeState(cluster.dir, { sidecars: {} });
  return { stopped: [...sidecars, ...postmasters] };
}
