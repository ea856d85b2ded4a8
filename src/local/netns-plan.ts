// The network of a `pgward up --netns` cluster, planned without IO: one network
// namespace per node, a veth from each into one bridge in the root namespace, and
// a private /24 on that bridge (the bridge takes .1, node i takes .10+i). Names
// carry the cluster's random id, so clusters created in parallel never collide;
// Linux limits interface names to 15 characters, which the id length respects.
import { createHash } from 'node:crypto';

export interface NetnsNode {
  /** Network namespace the node's sidecar and PostgreSQL run in. */
  namespace: string;
  /** The veth end in the root namespace (attached to the bridge); inside it is `eth0`. */
  veth: string;
  /** The node's only address: every listener of the node binds to it. */
  address: string;
}

export interface NetnsNetwork {
  /** Bridge in the root namespace; its address is the root namespace's way in. */
  bridge: string;
  /** e.g. 10.173.42.0/24 */
  cidr: string;
  /** The bridge's address: what clients in the root namespace connect from. */
  gateway: string;
  nodes: Record<string, NetnsNode>;
}

/** Interface name limit (IFNAMSIZ - 1). */
const IFNAME_MAX = 15;
const NODE_HOST_BASE = 10;
const MAX_NODES = 200;

/** The random part of a local cluster's name (`local-1a2b3c` -> `1a2b3c`), the naming key. */
export function networkId(clusterName: string): string {
  const id = /^local-([0-9a-f]{6})$/.exec(clusterName)?.[1];
  if (id === undefined) {
    // Any other name: a stable 6-hex digest keeps names short and unique enough.
    return createHash('sha256').update(clusterName).digest('hex').slice(0, 6);
  }
  return id;
}

/**
 * The /24 for attempt `attempt` (0, 1, ...): 10.A.B.0/24 with A in [64, 253] and B
 * derived from the cluster name, away from the 10.0.x/10.1.x ranges that VPNs,
 * Docker and cloud VPCs favour. The caller skips candidates that overlap a route.
 */
export function candidateCidr(clusterName: string, attempt: number): string {
  const digest = createHash('sha256').update(`${clusterName}/${attempt}`).digest();
  const a = 64 + (digest[0]! % 190);
  const b = digest[1]!;
  return `10.${a}.${b}.0/24`;
}

export function planNetwork(clusterName: string, nodeNames: string[], cidr: string): NetnsNetwork {
  if (nodeNames.length === 0 || nodeNames.length > MAX_NODES) {
    throw new Error(`a netns cluster has 1 to ${MAX_NODES} nodes, not ${nodeNames.length}`);
  }
  const match = /^(\d+\.\d+\.\d+)\.0\/24$/.exec(cidr);
  if (match === null) throw new Error(`netns clusters use a /24, got ${cidr}`);
  const prefix = match[1]!;
  const id = networkId(clusterName);
  const nodes: Record<string, NetnsNode> = {};
  nodeNames.forEach((name, i) => {
    nodes[name] = {
      namespace: `pgw-${id}-n${i + 1}`,
      veth: `pgw-${id}-${i + 1}`,
      address: `${prefix}.${NODE_HOST_BASE + i + 1}`,
    };
  });
  const network: NetnsNetwork = { bridge: `pgw-${id}-br`, cidr, gateway: `${prefix}.1`, nodes };
  for (const ifname of [network.bridge, ...Object.values(nodes).map((n) => n.veth)]) {
    if (ifname.length > IFNAME_MAX) throw new Error(`interface name ${ifname} is longer than ${IFNAME_MAX}`);
  }
  return network;
}

function toInt(address: string): number {
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new Error(`not an IPv4 address: ${address}`);
  }
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

/** [first, last] addresses of `a.b.c.d/len` (a bare address is a /32). */
export function cidrRange(cidr: string): [number, number] {
  const [address, lenText] = cidr.split('/');
  const len = lenText === undefined ? 32 : Number(lenText);
  if (!Number.isInteger(len) || len < 0 || len > 32) throw new Error(`bad prefix length in ${cidr}`);
  const size = 2 ** (32 - len);
  const first = Math.floor(toInt(address!) / size) * size;
  return [first, first + size - 1];
}

export function cidrsOverlap(a: string, b: string): boolean {
  const [a0, a1] = cidrRange(a);
  const [b0, b1] = cidrRange(b);
  return a0 <= b1 && b0 <= a1;
}

/**
 * The first candidate /24 that overlaps none of `inUse` (routes and addresses of the
 * root namespace). A default route (0.0.0.0/0) is not a claim on the space and is ignored.
 */
export function chooseCidr(clusterName: string, inUse: string[], attempts = 64): string {
  const claims = inUse.filter((c) => c !== 'default' && !c.endsWith('/0'));
  for (let attempt = 0; attempt < attempts; attempt++) {
    const cidr = candidateCidr(clusterName, attempt);
    if (!claims.some((claim) => cidrsOverlap(cidr, claim))) return cidr;
  }
  throw new Error(`no free 10.x.y.0/24 for the cluster network after ${attempts} tries`);
}

/**
 * iptables rules (arguments after `iptables -w`) that cut a node off from the
 * other nodes while leaving the bridge address (the root namespace: clients,
 * status, drills) reachable. Applied inside the node's namespace; heal flushes
 * INPUT and OUTPUT there (the namespace holds no other rules).
 */
export function isolationRules(network: NetnsNetwork, node: string): string[][] {
  const self = network.nodes[node];
  if (self === undefined) throw new Error(`no node ${node} in the cluster network`);
  const rules: string[][] = [];
  for (const [name, other] of Object.entries(network.nodes)) {
    if (name === node) continue;
    rules.push(['-A', 'INPUT', '-s', other.address, '-j', 'DROP']);
    rules.push(['-A', 'OUTPUT', '-d', other.address, '-j', 'DROP']);
  }
  return rules;
}
