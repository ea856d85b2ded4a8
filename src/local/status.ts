// `pgward status`: asks every node's sidecar for its own view and merges them.
import type { ClusterStatus, NodeStatus } from '../api/status.ts';
import { readPostmasterPid } from '../postgres/instance.ts';
import { lagBytes, parseLsn } from '../postgres/lsn.ts';
import { type LocalCluster, nodeHost, readState } from './layout.ts';
import { isSidecarOf } from './processes.ts';

const FETCH_TIMEOUT_MS = 2000;

async function fetchStatus(url: string): Promise<ClusterStatus | null> {
  try {
    const response = await fetch(`${url}/cluster`, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
    if (!response.ok) return null;
    return (await response.json()) as ClusterStatus;
  } catch {
    return null;
  }
}

export async function collectStatus(cluster: LocalCluster): Promise<ClusterStatus> {
  const state = readState(cluster.dir);
  const reports = await Promise.all(
    cluster.nodes.map((node) => fetchStatus(`http://${nodeHost(node)}:${node.apiPort}`)),
  );
  const nodes: NodeStatus[] = cluster.nodes.map((node, i) => {
    const own = reports[i]?.nodes.find((n) => n.name === node.name);
    const sidecarPid = state.sidecars[node.name];
    const sidecarAlive = isSidecarOf(sidecarPid, node);
    const postmasterPid = readPostmasterPid(node.pgDataDir);
    if (own !== undefined) {
      return { ...own, sidecar: { ...own.sidecar, pid: own.sidecar.pid ?? sidecarPid ?? null } };
    }
    return {
      name: node.name,
      role: sidecarAlive || postmasterPid !== null ? 'unknown' : 'down',
      sidecar: { pid: sidecarAlive ? sidecarPid! : null, api: `http://${nodeHost(node)}:${node.apiPort}` },
      proxy: { host: nodeHost(node), port: node.proxyPort, readOnlyPort: node.readOnlyPort },
      postgres: {
        host: nodeHost(node),
        port: node.pgPort,
        pid: postmasterPid,
        dataDir: node.pgDataDir,
        receiveLsn: null,
        replayLsn: null,
        lagBytes: null,
        sync: null,
      },
    };
  });
  const primaryIndex = nodes.findIndex((n) => n.role === 'primary');
  const primary = primaryIndex >= 0 ? nodes[primaryIndex]! : null;
  const primaryReport = primaryIndex >= 0 ? reports[primaryIndex] : null;
  const primaryLsn = primary?.postgres.currentLsn ? parseLsn(primary.postgres.currentLsn) : null;
  for (const node of nodes) {
    if (node === primary || primaryReport == null) continue;
    const seen = primaryReport.nodes.find((n) => n.name === node.name);
    if (node.postgres.sync === null && seen) node.postgres.sync = seen.postgres.sync;
    if (primaryLsn !== null && node.postgres.replayLsn !== null) {
      node.postgres.lagBytes = lagBytes(primaryLsn, parseLsn(node.postgres.replayLsn));
    }
  }
  const term = Math.max(1, ...reports.map((r) => r?.term ?? 0));
  return { cluster: cluster.name, term, primary: primary?.name ?? null, nodes };
}

export function formatStatusTable(status: ClusterStatus): string {
  const header = [
    'Member',
    'Role',
    'Proxy',
    'PostgreSQL',
    'PG pid',
    'Sidecar pid',
    'Replay LSN',
    'Lag (bytes)',
    'Sync',
  ];
  const rows = status.nodes.map((n) => [
    n.name,
    n.role,
    `${n.proxy.host}:${n.proxy.port}`,
    `${n.postgres.host}:${n.postgres.port}`,
    String(n.postgres.pid ?? '-'),
    String(n.sidecar.pid ?? '-'),
    n.postgres.replayLsn ?? '-',
    n.postgres.lagBytes === null ? '-' : String(n.postgres.lagBytes),
    n.postgres.sync ?? '-',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const rule = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  return [
    `Cluster: ${status.cluster} (term ${status.term}, primary ${status.primary ?? 'none'})`,
    rule,
    line(header),
    rule,
    ...rows.map(line),
    rule,
  ].join('\n');
}
