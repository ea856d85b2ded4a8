// Parent side of node-process.ts: spawns Raft members as real processes on
// loopback and talks to them over stdin/stdout.
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import type { RaftTiming } from '../../../src/raft/driver.ts';
import { waitFor } from '../../support/wait.ts';
import type { NodeProcessConfig } from './node-process.ts';

const PROGRAM = path.join(import.meta.dirname, 'node-process.ts');

export const DEFAULT_TIMING: RaftTiming = {
  tickMs: 50,
  heartbeatTicks: 2,
  electionTicks: 10,
  maxClockDrift: 0.01,
  leaseMs: 400,
  leaseStopMarginMs: 100,
};

export interface NodeSummary {
  role: string;
  term: number;
  leader: string;
  commit: number;
  lastIndex: number;
  leased: boolean;
  applied: string[];
  stalls: number;
}

// biome-ignore lint/suspicious/noExplicitAny: protocol lines are checked by the tests that read them
export type Line = Record<string, any>;

export class RaftProcess {
  readonly events: Line[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;
  private readonly waiting = new Map<string, (line: Line) => void>();
  private nextId = 1;

  constructor(readonly config: NodeProcessConfig) {
    this.child = spawn(process.execPath, ['--import', 'tsx', PROGRAM, JSON.stringify(config)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => resolve({ code, signal })),
    );
    this.child.stderr!.on('data', (chunk: Buffer) => {
      // Bounded: only the latest output matters for diagnosis.
      this.stderr = (this.stderr + chunk.toString()).slice(-20_000);
    });
    this.child.stdin!.on('error', () => {});
    readline.createInterface({ input: this.child.stdout! }).on('line', (text) => {
      const line = JSON.parse(text) as Line;
      if (typeof line.id === 'string') {
        this.waiting.get(line.id)?.(line);
        this.waiting.delete(line.id);
      } else {
        this.events.push(line);
      }
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async request(command: string, timeoutMs = 15_000): Promise<Line> {
    if (!this.alive) throw new Error(`raft process ${this.config.id} is not running`);
    const id = String(this.nextId++);
    const reply = new Promise<Line>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`raft process ${this.config.id}: no reply to "${command}" within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, (line) => {
        clearTimeout(timer);
        resolve(line);
      });
    });
    this.child.stdin!.write(`${id} ${command}\n`);
    return reply;
  }

  async status(): Promise<NodeSummary> {
    const reply = await this.request('status');
    return reply.status as NodeSummary;
  }

  async propose(text: string): Promise<number> {
    const reply = await this.request(`propose ${text}`);
    if (!reply.ok) throw new Error(`propose on ${this.config.id} failed: ${reply.error}`);
    return reply.index as number;
  }

  async started(timeoutMs: number): Promise<Line> {
    return waitFor(() => this.events.find((e) => e.event === 'started'), {
      timeoutMs,
      what: `${this.config.id} to start (stderr: ${this.stderr.slice(-500)})`,
    });
  }

  async kill9(): Promise<void> {
    if (this.alive) this.child.kill('SIGKILL');
    await this.exited;
  }

  /** Graceful stop (closing stdin), then SIGKILL if it lingers. */
  async stop(timeoutMs = 5000): Promise<void> {
    if (!this.alive) return;
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }
}

export class ProcessCluster {
  readonly nodes = new Map<string, RaftProcess>();

  constructor(
    private readonly root: string,
    private readonly ports: Map<string, number>,
    private readonly timing: RaftTiming = DEFAULT_TIMING,
    private readonly snapshotEveryEntries?: number,
  ) {}

  dataDir(id: string): string {
    return path.join(this.root, id);
  }

  spawn(id: string): RaftProcess {
    const peers = Object.fromEntries([...this.ports].filter(([peer]) => peer !== id));
    const node = new RaftProcess({
      id,
      dataDir: this.dataDir(id),
      port: this.ports.get(id)!,
      peers,
      timing: this.timing,
      ...(this.snapshotEveryEntries !== undefined ? { snapshotEveryEntries: this.snapshotEveryEntries } : {}),
    });
    this.nodes.set(id, node);
    return node;
  }

  async startAll(timeoutMs: number): Promise<void> {
    const nodes = [...this.ports.keys()].map((id) => this.spawn(id));
    await Promise.all(nodes.map((n) => n.started(timeoutMs)));
  }

  /**
   * The one live node that leads (with a valid lease when `leased`), found by
   * polling statuses. Tests ask for the role only: on an overloaded machine the
   * stall detector keeps voiding leases, which is right but says nothing of elections.
   */
  async leader(
    timeoutMs: number,
    options: { exclude?: string; leased?: boolean } = {},
  ): Promise<[string, RaftProcess]> {
    const { exclude, leased = false } = options;
    return waitFor(
      async () => {
        const live = [...this.nodes].filter(([id, n]) => id !== exclude && n.alive);
        const statuses = await Promise.all(live.map(async ([id, n]) => [id, n, await n.status()] as const));
        const leaders = statuses.filter(([, , s]) => s.role === 'leader' && (s.leased || !leased));
        return leaders.length === 1 ? ([leaders[0]![0], leaders[0]![1]] as [string, RaftProcess]) : undefined;
      },
      { timeoutMs, intervalMs: 50, what: leased ? 'a leader with a lease' : 'a leader' },
    );
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.nodes.values()].map((n) => n.kill9()));
  }
}
