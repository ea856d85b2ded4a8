// What a drill needs from a cluster: where clients connect, who is primary, and
// the levers to break and heal nodes. The local cluster of `pgward up` is the one
// implementation: its sidecar pids, data dirs and ports are on this machine.
import { readFileSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { type LocalCluster, type LocalNode, nodeHost, readState, requireCluster } from '../local/layout.ts';
import { healNode, isolateNode } from '../local/netns.ts';
import { isSidecarOf, sendSignal } from '../local/processes.ts';
import { upLocalCluster } from '../local/up.ts';
import { isAlive, readPostmasterPid } from '../postgres/instance.ts';

export interface TargetStatus {
  term: number;
  primary: string | null;
}

export interface DrillTarget {
  readonly name: string;
  nodeNames(): string[];
  /** postgres:// URL of a node's read-write proxy port. */
  proxyUrl(node: string): string;
  /** The view of the first member that answers; null when none does. */
  status(): Promise<TargetStatus | null>;
  /** True when exactly one node is a writable primary and every other node a streaming backup. */
  whole(): Promise<{ whole: boolean; detail: string }>;
  postmasterPids(node: string): number[];
  sidecarPid(node: string): number | null;
  /** Sends `signal` to each pid (ESRCH ignored). */
  signal(pids: number[], signal: NodeJS.Signals): void;
  /** Starts the sidecars that are not running (they restart their PostgreSQL and rejoin). */
  restartMissing(timeoutMs: number): Promise<void>;
  switchover(to?: string): Promise<string>;
  /** Adds a line to the members' dashboard timelines; best effort. */
  announce(message: string): Promise<void>;
  /**
   * Network partition lever, present only when nodes have their own network (netns):
   * cut `node` off from every other node while clients still reach its proxy.
   */
  isolate?(node: string): void;
  /** Undo isolate(node). */
  heal?(node: string): void;
}

const HTTP_TIMEOUT_MS = 2000;

export class LocalClusterTarget implements DrillTarget {
  readonly cluster: LocalCluster;

  /** Only on a `pgward up --netns` cluster: on 127.0.0.1 no rule can tell the nodes apart. */
  readonly isolate?: (node: string) => void;
  readonly heal?: (node: string) => void;

  constructor(dir: string) {
    this.cluster = requireCluster(dir);
    const network = this.cluster.network;
    if (network !== undefined) {
      this.isolate = (node) => isolateNode(network, this.node(node).name);
      this.heal = (node) => healNode(network, this.node(node).name);
    }
  }

  get name(): string {
    return this.cluster.name;
  }

  nodeNames(): string[] {
    return this.cluster.nodes.map((n) => n.name);
  }

  proxyUrl(node: string): string {
    const found = this.node(node);
    return `postgres://postgres@${nodeHost(found)}:${found.proxyPort}/postgres`;
  }

  /** The newest view among the members that answer: an isolated old primary still answers with its old term. */
  async status(): Promise<TargetStatus | null> {
    const views = await Promise.all(
      this.cluster.nodes.map(async (node): Promise<TargetStatus | null> => {
        try {
          const res = await fetch(`${apiUrl(node)}/cluster`, {
            signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
          });
          if (!res.ok) return null;
          const body = (await res.json()) as { term?: unknown; primary?: unknown };
          if (typeof body.term !== 'number') return null;
          return { term: body.term, primary: typeof body.primary === 'string' ? body.primary : null };
        } catch {
          return null;
        }
      }),
    );
    let best: TargetStatus | null = null;
    for (const view of views) {
      if (view === null) continue;
      // Same term: a view that knows the primary beats one that does not (yet).
      if (best === null || view.term > best.term || (view.term === best.term && best.primary === null)) {
        best = view;
      }
    }
    return best;
  }

  async whole(): Promise<{ whole: boolean; detail: string }> {
    const answers = await Promise.all(
      this.cluster.nodes.map(async (node) => {
        const get = async (path: string) => {
          try {
            const res = await fetch(`${apiUrl(node)}${path}`, {
              signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
            });
            await res.body?.cancel();
            return res.status === 200;
          } catch {
            return false;
          }
        };
        const primary = await get('/primary');
        const replica = primary ? false : await get('/replica');
        return { name: node.name, primary, replica };
      }),
    );
    const primaries = answers.filter((a) => a.primary).map((a) => a.name);
    const notServing = answers.filter((a) => !a.primary && !a.replica).map((a) => a.name);
    const whole = primaries.length === 1 && notServing.length === 0;
    return {
      whole,
      detail: `primaries: [${primaries.join(', ')}], not streaming: [${notServing.join(', ')}]`,
    };
  }

  postmasterPids(node: string): number[] {
    const postmaster = readPostmasterPid(this.node(node).pgDataDir);
    if (postmaster === null) return [];
    return [postmaster, ...childrenOf(postmaster)];
  }

  sidecarPid(node: string): number | null {
    const pid = readState(this.cluster.dir).sidecars[node];
    return isSidecarOf(pid, this.node(node)) ? (pid ?? null) : null;
  }

  signal(pids: number[], signal: NodeJS.Signals): void {
    for (const pid of pids) if (isAlive(pid)) sendSignal(pid, signal);
  }

  async restartMissing(timeoutMs: number): Promise<void> {
    await upLocalCluster({ dir: this.cluster.dir, timeoutMs });
  }

  async switchover(to?: string): Promise<string> {
    let last = 'no member answered';
    for (const node of this.cluster.nodes) {
      try {
        const res = await fetch(`${apiUrl(node)}/switchover`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${this.cluster.apiToken}` },
          body: JSON.stringify(to === undefined ? {} : { to }),
          signal: AbortSignal.timeout(60_000),
        });
        const body = (await res.json().catch(() => ({}))) as { message?: string; error?: string };
        if (res.ok) return body.message ?? 'switched over';
        last = `${node.name}: HTTP ${res.status} ${body.message ?? body.error ?? ''}`;
        if (res.status !== 503) break;
      } catch (error) {
        last = `${node.name}: ${(error as Error).message}`;
      }
    }
    throw new UserError(
      `switchover failed: ${last}`,
      'check `pgward status`; the cluster must have a healthy backup',
    );
  }

  async announce(message: string): Promise<void> {
    await Promise.all(
      this.cluster.nodes.map((node) =>
        fetch(`${apiUrl(node)}/events`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${this.cluster.apiToken}` },
          body: JSON.stringify({ kind: 'drill', message: message.slice(0, 500) }),
          signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
        })
          .then((res) => res.body?.cancel())
          .catch(() => undefined),
      ),
    );
  }

  private node(name: string): LocalNode {
    const node = this.cluster.nodes.find((n) => n.name === name);
    if (node === undefined) {
      throw new UserError(
        `no node '${name}' in ${this.cluster.dir}`,
        `use one of ${this.nodeNames().join(', ')}`,
      );
    }
    return node;
  }
}

function apiUrl(node: LocalNode): string {
  return `http://${nodeHost(node)}:${node.apiPort}`;
}

/** Direct children of `pid` (PostgreSQL's backends and auxiliary processes), from /proc. */
function childrenOf(pid: number): number[] {
  try {
    const text = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    return text === '' ? [] : text.split(/\s+/).map(Number);
  } catch {
    return [];
  }
}
