// `pgward up`: creates (first run) or restarts (data kept) the local cluster,
// one detached sidecar process per node, and waits until the primary takes writes.
import path from 'node:path';
import { loadConfig } from '../config/load.ts';
import { UserError } from '../errors.ts';
import { queryOnce } from '../postgres/instance.ts';
import { createLocalCluster } from './create.ts';
import {
  isWitnessNode,
  type LocalCluster,
  nodeHost,
  nodeNamespace,
  readCluster,
  readState,
  writeState,
} from './layout.ts';
import { ensureNetwork } from './netns.ts';
import { isSidecarOf, logTail, spawnSidecar } from './processes.ts';

export interface UpOptions {
  dir: string;
  /** Only used on the first run; a different count on an existing dir is refused. */
  nodes?: number;
  /** Only used on the first run. */
  port?: number;
  /** Bound on waiting for the cluster to accept writes. */
  timeoutMs?: number;
  /** First run only: per-node config additions (tests). */
  overrides?: Record<string, unknown>;
  /** First run only: one network namespace per node (root only); later runs keep what the dir has. */
  netns?: boolean;
  /** First run only: add a witness (a Raft vote without PostgreSQL) to the `nodes` members. */
  witness?: boolean;
  log?: (line: string) => void;
}

export interface UpResult {
  cluster: LocalCluster;
  created: boolean;
  /** True when every sidecar was already running (nothing started). */
  alreadyRunning: boolean;
  /** Node names whose sidecar this call started. */
  started: string[];
}

export const DEFAULT_NODES = 3;
export const DEFAULT_PORT = 6432;
const WRITE_PROBE_TIMEOUT_MS = 5000;

export async function upLocalCluster(options: UpOptions): Promise<UpResult> {
  const dir = path.resolve(options.dir);
  const log = options.log ?? (() => {});
  let cluster = readCluster(dir);
  let created = false;
  if (cluster === null) {
    cluster = await createLocalCluster({
      dir,
      nodes: options.nodes ?? DEFAULT_NODES,
      port: options.port ?? DEFAULT_PORT,
      ...(options.overrides ? { overrides: options.overrides } : {}),
      ...(options.netns ? { netns: true } : {}),
      ...(options.witness ? { witness: true } : {}),
    });
    created = true;
    const witnesses = cluster.nodes.length - databaseNodes(cluster).length;
    log(
      `created a ${databaseNodes(cluster).length}-node cluster${witnesses > 0 ? ' with a witness' : ''} '${cluster.name}' in ${dir}`,
    );
  } else if (options.nodes !== undefined && options.nodes !== databaseNodes(cluster).length) {
    throw new UserError(
      `the cluster in ${dir} has ${databaseNodes(cluster).length} database nodes, not ${options.nodes}`,
      `omit --nodes to restart it, or use another --dir for a new cluster`,
    );
  } else if (options.netns && cluster.network === undefined) {
    throw new UserError(
      `the cluster in ${dir} was created without --netns (all nodes on 127.0.0.1)`,
      `omit --netns to restart it, or use another --dir for a namespaced cluster`,
    );
  }
  const state = readState(dir);
  const toStart = cluster.nodes.filter((node) => !isSidecarOf(state.sidecars[node.name], node));
  if (toStart.length === 0) {
    return { cluster, created, alreadyRunning: true, started: [] };
  }
  // Namespaces do not survive a reboot, and a failed `up` may have left half of them.
  if (cluster.network !== undefined) ensureNetwork(cluster.network);
  for (const node of toStart) {
    state.sidecars[node.name] = spawnSidecar(node, nodeNamespace(cluster, node));
    log(`started ${node.name} (sidecar pid ${state.sidecars[node.name]})`);
  }
  writeState(dir, state);
  await waitForWrites(cluster, options.timeoutMs ?? 180_000);
  return { cluster, created, alreadyRunning: false, started: toStart.map((n) => n.name) };
}

/** The nodes with PostgreSQL (a witness has none). */
function databaseNodes(cluster: LocalCluster): LocalCluster['nodes'] {
  return cluster.nodes.filter((node) => !isWitnessNode(node));
}

/** The proxy the printed URL names (node1's), or null when its proxy is disabled. */
function clientProxy(cluster: LocalCluster): { name: string; host: string; port: number } | null {
  const node = cluster.nodes[0]!;
  const config = loadConfig({ file: node.configFile, env: {} });
  return config.proxy.enabled ? { name: node.name, host: nodeHost(node), port: node.proxyPort } : null;
}

/**
 * Waits until some node is a primary whose commits are acknowledged (which, with
 * synchronous quorum commit, needs a streaming backup). Fails early with the log
 * tail of a sidecar that died. Then one write through node1's proxy, the URL users get.
 */
export async function waitForWrites(cluster: LocalCluster, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastProblem = 'no node answered yet';
  while (Date.now() < deadline) {
    const state = readState(cluster.dir);
    for (const node of cluster.nodes) {
      if (!isSidecarOf(state.sidecars[node.name], node)) {
        throw new UserError(
          `the sidecar of ${node.name} exited: ${logTail(node)}`,
          `read ${path.join(node.dir, 'sidecar.log')}, fix the cause, then run pgward up --dir ${cluster.dir} again`,
        );
      }
    }
    for (const node of databaseNodes(cluster)) {
      try {
        const config = {
          host: nodeHost(node),
          port: node.pgPort,
          user: 'postgres',
          database: 'postgres',
          connectionTimeoutMillis: WRITE_PROBE_TIMEOUT_MS,
          query_timeout: WRITE_PROBE_TIMEOUT_MS,
        };
        const rows = await queryOnce<{ primary: boolean; ready: boolean }>(
          config,
          `SELECT NOT pg_is_in_recovery() AS primary,
                  current_setting('synchronous_standby_names') = ''
                  OR EXISTS (SELECT 1 FROM pg_stat_replication WHERE state = 'streaming') AS ready`,
        );
        if (rows[0]?.primary !== true) continue;
        // Probing a write before a backup streams would leave a backend waiting on the quorum.
        if (rows[0]?.ready !== true) {
          lastProblem = `${node.name}: waiting for a streaming backup`;
          continue;
        }
        // Assigning an xid makes the commit wait for the synchronous quorum.
        await queryOnce(config, 'SELECT pg_current_xact_id()');
        const proxy = clientProxy(cluster);
        if (proxy !== null) {
          lastProblem = `${proxy.name}'s proxy on port ${proxy.port} does not take writes yet`;
          await queryOnce({ ...config, host: proxy.host, port: proxy.port }, 'SELECT pg_current_xact_id()');
        }
        return;
      } catch (error) {
        lastProblem = `${node.name}: ${(error as Error).message}`;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  throw new UserError(
    `the cluster in ${cluster.dir} did not accept writes within ${timeoutMs} ms (${lastProblem})`,
    `check the sidecar logs (${cluster.dir}/node*/sidecar.log) and pgward status --dir ${cluster.dir}`,
  );
}
