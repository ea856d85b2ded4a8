// On-disk layout of a local cluster (`pgward up --dir DIR`):
//   DIR/cluster.json        nodes, ports, secrets (written once, on the first `up`)
//   DIR/state.json          pids of the sidecars `up` started
//   DIR/<node>/config.yaml  that node's sidecar configuration
//   DIR/<node>/sidecar.log  the sidecar's JSON log; postgres.log beside it
//   DIR/<node>/pgdata       its PostgreSQL data directory
// With `--netns`, cluster.json also records the network (namespaces, veths, bridge,
// addresses): the root namespace reaches each node at its own address.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.ts';
import type { NetnsNetwork } from './netns-plan.ts';

export interface LocalNode {
  name: string;
  /** Absent on clusters written before witnesses: a member. A witness has no PostgreSQL nor proxy (ports 0). */
  kind?: 'member' | 'witness';
  /** The node's directory (its node.dataDir). */
  dir: string;
  configFile: string;
  pgDataDir: string;
  pgPort: number;
  proxyPort: number;
  readOnlyPort: number;
  apiPort: number;
  /** Reserved for the Raft transport. */
  raftPort: number;
  /** Where every listener of the node binds; absent (older layouts): 127.0.0.1. */
  host?: string;
}

export interface LocalCluster {
  version: 1;
  name: string;
  dir: string;
  primary: string;
  apiToken: string;
  nodes: LocalNode[];
  /** Set for `pgward up --netns`: each node runs in its own network namespace. */
  network?: NetnsNetwork;
}

export interface LocalState {
  /** Sidecar pid by node name. */
  sidecars: Record<string, number>;
}

export function clusterFile(dir: string): string {
  return path.join(dir, 'cluster.json');
}

export function stateFile(dir: string): string {
  return path.join(dir, 'state.json');
}

export function sidecarLog(node: LocalNode): string {
  return path.join(node.dir, 'sidecar.log');
}

export function readCluster(dir: string): LocalCluster | null {
  const file = clusterFile(dir);
  if (!existsSync(file)) return null;
  return JSON.parse(readFileSync(file, 'utf8')) as LocalCluster;
}

export function requireCluster(dir: string): LocalCluster {
  const cluster = readCluster(dir);
  if (cluster === null) {
    throw new UserError(`no local cluster in ${dir}`, `create one with: pgward up --dir ${dir}`);
  }
  return cluster;
}

export function readState(dir: string): LocalState {
  const file = stateFile(dir);
  if (!existsSync(file)) return { sidecars: {} };
  return JSON.parse(readFileSync(file, 'utf8')) as LocalState;
}

export function writeState(dir: string, state: LocalState): void {
  writeJsonAtomic(stateFile(dir), state);
}

export function writeJsonAtomic(file: string, value: unknown): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(tmp, file);
}

/** The address the node listens on, reachable from the root namespace. */
export function nodeHost(node: LocalNode): string {
  return node.host ?? '127.0.0.1';
}

/** The node's network namespace, or null when it runs in the root namespace. */
export function nodeNamespace(cluster: LocalCluster, node: LocalNode): string | null {
  return cluster.network?.nodes[node.name]?.namespace ?? null;
}

export function isWitnessNode(node: LocalNode): boolean {
  return node.kind === 'witness';
}

/** The URL clients use: node1's proxy. */
export function connectionUrl(cluster: LocalCluster, node = cluster.nodes[0]!): string {
  return `postgres://postgres@${nodeHost(node)}:${node.proxyPort}/postgres`;
}
