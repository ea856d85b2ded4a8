// First `pgward up` on a directory: pick ports, secrets and write one config per node.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import YAML from 'yaml';
import { UserError } from '../errors.ts';
import { clusterFile, type LocalCluster, type LocalNode, readCluster, writeJsonAtomic } from './layout.ts';
import { allocateNetwork, requireNetns } from './netns.ts';

export interface CreateOptions {
  dir: string;
  nodes: number;
  /** node1's proxy port; node i gets port+i-1 and read-only port+10+i-1. 0: every port from the OS. */
  port: number;
  /** Per-node config additions, deep-merged over the generated config (tests use it). */
  overrides?: Record<string, unknown>;
  /** One network namespace per node on a private bridge (root only); else all on 127.0.0.1. */
  netns?: boolean;
  /** Adds one witness node (`witness`: a Raft vote, no PostgreSQL, no proxy) after the members. */
  witness?: boolean;
}

/** The name of the witness node `pgward up --witness` adds. */
export const WITNESS_NODE = 'witness';

export const MAX_LOCAL_NODES = 9;

/** Reserves `count` distinct free TCP ports on 127.0.0.1 from the OS. */
export async function freePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = net.createServer();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
      servers.push(server);
    }
    return servers.map((s) => (s.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

export async function portIsFree(port: number): Promise<boolean> {
  const server = net.createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

function deepMerge(base: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(extra)) {
    const current = out[key];
    out[key] =
      value !== null &&
      typeof value === 'object' &&
      !Array.isArray(value) &&
      current !== null &&
      typeof current === 'object' &&
      !Array.isArray(current)
        ? deepMerge(current as Record<string, unknown>, value as Record<string, unknown>)
        : value;
  }
  return out;
}

export async function createLocalCluster(options: CreateOptions): Promise<LocalCluster> {
  const dir = path.resolve(options.dir);
  if (readCluster(dir) !== null) throw new Error(`a local cluster already exists in ${dir}`);
  if (!Number.isInteger(options.nodes) || options.nodes < 1 || options.nodes > MAX_LOCAL_NODES) {
    throw new UserError(
      `--nodes ${options.nodes} is out of range`,
      `use 1 to ${MAX_LOCAL_NODES} nodes (3 is the default)`,
    );
  }
  const n = options.nodes;
  if (options.netns) requireNetns();
  let clientPorts: number[];
  if (options.port === 0) {
    clientPorts = await freePorts(2 * n);
  } else {
    if (!Number.isInteger(options.port) || options.port < 1 || options.port + 10 + n > 65535) {
      throw new UserError(
        `--port ${options.port} is out of range`,
        'use a port between 1024 and 65000, or 0 for free ports',
      );
    }
    clientPorts = [
      ...Array.from({ length: n }, (_, i) => options.port + i),
      ...Array.from({ length: n }, (_, i) => options.port + 10 + i),
    ];
    for (const port of clientPorts) {
      if (!(await portIsFree(port))) {
        throw new UserError(
          `port ${port} on 127.0.0.1 is already in use`,
          `pick another base with --port, or --port 0 for free ports`,
        );
      }
    }
  }
  const w = options.witness === true ? 1 : 0;
  // The witness needs only API and Raft ports (3n and 3n+1).
  const internal = await freePorts(3 * n + 2 * w);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  // PostgreSQL runs as another user below this directory: it must be traversable.
  chmodSync(dir, 0o755);
  const name = `local-${randomBytes(3).toString('hex')}`;
  const nodeNames = Array.from({ length: n }, (_, i) => `node${i + 1}`);
  // Ports stay distinct across nodes even with an address each: one list of ports to read.
  const witnessNames = w === 1 ? [WITNESS_NODE] : [];
  const network = options.netns ? allocateNetwork(name, [...nodeNames, ...witnessNames]) : undefined;
  const nodes: LocalNode[] = nodeNames.map((nodeName, i) => {
    const nodeDir = path.join(dir, nodeName);
    return {
      name: nodeName,
      dir: nodeDir,
      configFile: path.join(nodeDir, 'config.yaml'),
      pgDataDir: path.join(nodeDir, 'pgdata'),
      proxyPort: clientPorts[i]!,
      readOnlyPort: clientPorts[n + i]!,
      pgPort: internal[i]!,
      apiPort: internal[n + i]!,
      raftPort: internal[2 * n + i]!,
      host: network?.nodes[nodeName]?.address ?? '127.0.0.1',
    };
  });
  for (const witnessName of witnessNames) {
    const witnessDir = path.join(dir, witnessName);
    nodes.push({
      name: witnessName,
      kind: 'witness',
      dir: witnessDir,
      configFile: path.join(witnessDir, 'config.yaml'),
      // A witness runs no PostgreSQL and no proxy: nothing listens on these.
      pgDataDir: path.join(witnessDir, 'pgdata'),
      proxyPort: 0,
      readOnlyPort: 0,
      pgPort: 0,
      apiPort: internal[3 * n]!,
      raftPort: internal[3 * n + 1]!,
      host: network?.nodes[witnessName]?.address ?? '127.0.0.1',
    });
  }
  const cluster: LocalCluster = {
    version: 1,
    name,
    dir,
    primary: 'node1',
    apiToken: randomBytes(16).toString('hex'),
    nodes,
    ...(network === undefined ? {} : { network }),
  };
  const secret = randomBytes(24).toString('hex');
  const members = nodes.map((node) =>
    node.kind === 'witness'
      ? { name: node.name, kind: 'witness', host: node.host, raftPort: node.raftPort, apiPort: node.apiPort }
      : {
          name: node.name,
          host: node.host,
          raftPort: node.raftPort,
          apiPort: node.apiPort,
          pgPort: node.pgPort,
          proxyPort: node.proxyPort,
          readOnlyPort: node.readOnlyPort,
        },
  );
  for (const node of nodes) {
    mkdirSync(node.dir, { recursive: true, mode: 0o755 });
    // A witness: Raft and the API only (no postgres section, no proxy).
    const witnessConfig = {
      cluster: { name, secret },
      node: { name: node.name, role: 'witness', dataDir: node.dir },
      members,
      bootstrap: { primary: cluster.primary },
      proxy: { enabled: false },
      raft: { host: node.host, port: node.raftPort },
      api: { host: node.host, port: node.apiPort, token: cluster.apiToken },
    };
    const config = deepMerge(
      node.kind === 'witness'
        ? witnessConfig
        : {
            cluster: { name, secret },
            node: { name: node.name, dataDir: node.dir },
            members,
            bootstrap: { primary: cluster.primary },
            postgres: {
              dataDir: node.pgDataDir,
              host: node.host,
              port: node.pgPort,
              // Peers and the root namespace reach PostgreSQL over the private bridge, not loopback.
              ...(network === undefined ? {} : { trustNetworks: [network.cidr] }),
            },
            proxy: { host: node.host, port: node.proxyPort, readOnlyPort: node.readOnlyPort },
            raft: { host: node.host, port: node.raftPort },
            api: { host: node.host, port: node.apiPort, token: cluster.apiToken },
          },
      options.overrides ?? {},
    );
    writeFileSync(
      node.configFile,
      `# Generated by pgward up; edit freely (see README "Configuration reference").\n${YAML.stringify(config)}`,
      {
        mode: 0o600,
      },
    );
  }
  writeJsonAtomic(clusterFile(dir), cluster);
  return cluster;
}
