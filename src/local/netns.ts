// Creating, tearing down and partitioning the network of a `pgward up --netns`
// cluster with `ip` and `iptables` (root only). Every step is idempotent: `up`
// re-creates what is missing (e.g. after a reboot), `down` removes what exists.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { chooseCidr, isolationRules, type NetnsNetwork, planNetwork } from './netns-plan.ts';

const COMMAND_TIMEOUT_MS = 20_000;
const BRIDGE_NF = '/proc/sys/net/bridge/bridge-nf-call-iptables';

function run(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, {
      encoding: 'utf8',
      timeout: COMMAND_TIMEOUT_MS,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim();
    throw new Error(`${command} ${args.join(' ')} failed: ${stderr || (error as Error).message}`);
  }
}

/** Runs a command whose failure only means "already gone"; returns whether it succeeded. */
function tryRun(command: string, args: string[]): boolean {
  return spawnSync(command, args, { stdio: 'ignore', timeout: COMMAND_TIMEOUT_MS }).status === 0;
}

/** Why this process cannot build namespaces, or null when it can. */
export function netnsUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'network namespaces need root (run as root)';
  const ip = spawnSync('ip', ['netns', 'list'], { stdio: 'ignore', timeout: COMMAND_TIMEOUT_MS });
  if (ip.error !== undefined || ip.status !== 0) return '`ip netns` is not available (install iproute2)';
  const iptables = spawnSync('iptables', ['-w', '-S', 'OUTPUT'], {
    stdio: 'ignore',
    timeout: COMMAND_TIMEOUT_MS,
  });
  if (iptables.error !== undefined || iptables.status !== 0) {
    return '`iptables` is not available (install iptables)';
  }
  return null;
}

export function requireNetns(): void {
  const why = netnsUnavailable();
  if (why !== null) {
    throw new UserError(
      `pgward up --netns cannot run here: ${why}`,
      'run it as root on Linux with iproute2 and iptables, or drop --netns (all nodes on 127.0.0.1)',
    );
  }
}

/** IPv4 prefixes the root namespace already uses (routes of every table and interface addresses). */
function prefixesInUse(): string[] {
  const routes = run('ip', ['-4', '-o', 'route', 'show', 'table', 'all'])
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0] ?? '')
    .filter((first) => /^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(first));
  const addresses = run('ip', ['-4', '-o', 'addr', 'show'])
    .split('\n')
    .map((line) => /\binet (\d+\.\d+\.\d+\.\d+\/\d+)/.exec(line)?.[1])
    .filter((cidr): cidr is string => cidr !== undefined);
  return [...routes, ...addresses];
}

/** Plans the network of a new cluster on a /24 nothing on this machine uses. */
export function allocateNetwork(clusterName: string, nodeNames: string[]): NetnsNetwork {
  requireNetns();
  return planNetwork(clusterName, nodeNames, chooseCidr(clusterName, prefixesInUse()));
}

function linkExists(name: string, namespace?: string): boolean {
  const args = namespace === undefined ? ['link', 'show', name] : ['-n', namespace, 'link', 'show', name];
  return tryRun('ip', args);
}

function namespaces(): Set<string> {
  return new Set(
    run('ip', ['netns', 'list'])
      .split('\n')
      .map((line) => line.trim().split(/\s+/)[0] ?? '')
      .filter((name) => name !== ''),
  );
}

/** With br_netfilter on, bridged frames cross the root FORWARD chain, whose policy may drop them. */
function forwardRule(network: NetnsNetwork): string[] {
  return ['FORWARD', '-i', network.bridge, '-o', network.bridge, '-j', 'ACCEPT'];
}

function bridgeNetfilterOn(): boolean {
  try {
    return existsSync(BRIDGE_NF) && readFileSync(BRIDGE_NF, 'utf8').trim() === '1';
  } catch {
    return false;
  }
}

/** Creates whatever part of the network is missing: bridge, namespaces, veths, addresses. */
export function ensureNetwork(network: NetnsNetwork): void {
  requireNetns();
  const prefixLength = network.cidr.split('/')[1]!;
  if (!linkExists(network.bridge)) {
    run('ip', ['link', 'add', network.bridge, 'type', 'bridge']);
    run('ip', ['addr', 'add', `${network.gateway}/${prefixLength}`, 'dev', network.bridge]);
  }
  run('ip', ['link', 'set', network.bridge, 'up']);
  if (bridgeNetfilterOn() && !tryRun('iptables', ['-w', '-C', ...forwardRule(network)])) {
    run('iptables', ['-w', '-I', ...forwardRule(network)]);
  }
  const existing = namespaces();
  for (const node of Object.values(network.nodes)) {
    if (!existing.has(node.namespace)) run('ip', ['netns', 'add', node.namespace]);
    if (!linkExists(node.veth)) {
      // A namespace left without its veth (half-created earlier) gets a fresh pair.
      if (linkExists('eth0', node.namespace)) run('ip', ['-n', node.namespace, 'link', 'del', 'eth0']);
      run('ip', ['link', 'add', node.veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', node.namespace]);
    }
    run('ip', ['link', 'set', node.veth, 'master', network.bridge, 'up']);
    const addr = run('ip', ['-n', node.namespace, '-4', '-o', 'addr', 'show', 'dev', 'eth0']);
    if (!addr.includes(`inet ${node.address}/`)) {
      run('ip', ['-n', node.namespace, 'addr', 'add', `${node.address}/${prefixLength}`, 'dev', 'eth0']);
    }
    run('ip', ['-n', node.namespace, 'link', 'set', 'eth0', 'up']);
    run('ip', ['-n', node.namespace, 'link', 'set', 'lo', 'up']);
  }
}

/** Polls `gone` every 100 ms until it holds or `timeoutMs` passes; returns its last answer. */
async function eventually(gone: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!gone()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return true;
}

const TEARDOWN_WAIT_MS = 10_000;

/**
 * Removes the namespaces (their veths and iptables rules go with them), the bridge and
 * the FORWARD rule; returns what is still there. The kernel destroys a deleted
 * namespace's veth pair asynchronously, so a veth is waited for before it is deleted
 * by hand (deleting it while it goes away fails).
 */
export async function removeNetwork(network: NetnsNetwork): Promise<string[]> {
  const problems: string[] = [];
  const existing = namespaces();
  for (const node of Object.values(network.nodes)) {
    if (existing.has(node.namespace)) tryRun('ip', ['netns', 'del', node.namespace]);
  }
  for (const node of Object.values(network.nodes)) {
    if (namespaces().has(node.namespace)) problems.push(`namespace ${node.namespace}`);
    if (await eventually(() => !linkExists(node.veth), TEARDOWN_WAIT_MS)) continue;
    tryRun('ip', ['link', 'del', node.veth]);
    if (!(await eventually(() => !linkExists(node.veth), TEARDOWN_WAIT_MS)))
      problems.push(`veth ${node.veth}`);
  }
  if (linkExists(network.bridge)) {
    tryRun('ip', ['link', 'del', network.bridge]);
    if (!(await eventually(() => !linkExists(network.bridge), TEARDOWN_WAIT_MS))) {
      problems.push(`bridge ${network.bridge}`);
    }
  }
  while (tryRun('iptables', ['-w', '-C', ...forwardRule(network)])) {
    if (!tryRun('iptables', ['-w', '-D', ...forwardRule(network)])) {
      problems.push(`iptables ${forwardRule(network).join(' ')}`);
      break;
    }
  }
  return problems;
}

function nodeOf(network: NetnsNetwork, node: string) {
  const found = network.nodes[node];
  if (found === undefined) throw new Error(`no node ${node} in the cluster network`);
  return found;
}

/** Drops all traffic between `node` and the other nodes; the root namespace still reaches it. */
export function isolateNode(network: NetnsNetwork, node: string): void {
  const { namespace } = nodeOf(network, node);
  healNode(network, node);
  for (const rule of isolationRules(network, node)) {
    run('ip', ['netns', 'exec', namespace, 'iptables', '-w', ...rule]);
  }
}

/** Removes the isolation rules (the namespace's INPUT and OUTPUT chains hold nothing else). */
export function healNode(network: NetnsNetwork, node: string): void {
  const { namespace } = nodeOf(network, node);
  run('ip', ['netns', 'exec', namespace, 'iptables', '-w', '-F', 'INPUT']);
  run('ip', ['netns', 'exec', namespace, 'iptables', '-w', '-F', 'OUTPUT']);
}

/** True when the node's namespace has isolation rules in place. */
export function isIsolated(network: NetnsNetwork, node: string): boolean {
  const { namespace } = nodeOf(network, node);
  return run('ip', ['netns', 'exec', namespace, 'iptables', '-w', '-S', 'INPUT']).includes('-j DROP');
}
