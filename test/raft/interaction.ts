// A small datadriven interpreter in the style of etcd-io/raft's InteractionEnv:
// a script drives in-memory RaftNodes and prints every Ready and message, so a
// protocol change shows up as a readable diff of a golden transcript.
import { decodeConfChange } from '../../src/raft/core/confchange.ts';
import { RaftNode } from '../../src/raft/core/raft-node.ts';
import { SeededRng } from '../../src/raft/core/rng.ts';
import type {
  ConfChangeType,
  Config,
  ConfState,
  Entry,
  HardState,
  Message,
  NodeId,
  Ready,
  Snapshot,
} from '../../src/raft/core/types.ts';

export const SCENARIO_CONFIG = {
  tickMs: 50,
  heartbeatTicks: 2,
  electionTicks: 10,
  maxClockDrift: 0.01,
  leaseMs: 400,
  leaseStopMarginMs: 100,
  maxInflightMsgs: 4,
  maxEntriesPerMsg: 4,
} as const;

/** Bounds `stabilize` so that a livelock fails the scenario instead of hanging it. */
const MAX_STABILIZE_ROUNDS = 200;

interface Durable {
  hardState: HardState;
  snapshot?: Snapshot;
  entries: Entry[];
  confState: ConfState;
}

interface SimNode {
  raft: RaftNode;
  clockMs: number;
  durable: Durable;
  inbox: Message[];
  applied: string[];
  crashed: boolean;
  /** A paused node does nothing, but messages to it queue up (a GC or event-loop stall). */
  paused: boolean;
}

const text = new TextDecoder();
const bytes = (s: string) => new TextEncoder().encode(s);

export class InteractionEnv {
  private readonly nodes = new Map<NodeId, SimNode>();
  /** Directed links that drop messages: "from->to". */
  private readonly cut = new Set<string>();
  private readonly overrides = new Map<NodeId, Partial<Config>>();

  /** Runs one command and returns its output (never empty). */
  run(command: string, args: string[]): string {
    const out: string[] = [];
    switch (command) {
      case 'add-nodes':
        this.addNodes(Number(args[0]), kv(args.slice(1)));
        break;
      case 'tick':
        this.tick(Number(args[0]), this.ids(args.slice(1)));
        break;
      case 'advance-clock':
        for (const id of this.ids(args.slice(1))) this.node(id).clockMs += Number(args[0]);
        break;
      case 'campaign':
        out.push(`campaign: ${this.node(args[0]!).raft.campaign() ? 'started' : 'refused'}`);
        break;
      case 'propose': {
        const r = this.node(args[0]!).raft.propose(bytes(args[1] ?? ''));
        out.push(r.ok ? `proposed ${r.term}/${r.index}` : `refused: ${r.reason}`);
        break;
      }
      case 'propose-conf-change': {
        const r = this.node(args[0]!).raft.proposeConfChange({
          type: args[1] as ConfChangeType,
          node: args[2]!,
        });
        out.push(r.ok ? `proposed ${r.term}/${r.index}` : `refused: ${r.reason}`);
        break;
      }
      case 'transfer-leader':
        out.push(`transfer: ${this.node(args[0]!).raft.transferLeader(args[1]!) ? 'started' : 'refused'}`);
        break;
      case 'set-fitness':
        this.node(args[0]!).raft.setFitness(BigInt(args[1]!));
        break;
      case 'campaign-allowed':
        this.node(args[0]!).raft.setCampaignAllowed(args[1] === 'true');
        break;
      case 'stabilize':
        this.stabilize(this.ids(args), out);
        break;
      case 'process-ready':
        for (const id of this.ids(args)) this.processReady(id, out);
        break;
      case 'deliver-msgs':
        for (const id of this.ids(args)) this.deliver(id, out);
        break;
      case 'partition':
        this.cut.clear();
        this.partition(args);
        break;
      case 'pause':
        this.node(args[0]!).paused = true;
        break;
      case 'resume':
        this.node(args[0]!).paused = false;
        break;
      case 'round':
        for (const id of this.ids(args)) this.processReady(id, out);
        for (const id of this.ids(args)) this.deliver(id, out);
        break;
      case 'cut':
        this.cut.add(`${args[0]}->${args[1]}`);
        break;
      case 'heal':
        this.cut.clear();
        break;
      case 'crash':
        this.node(args[0]!).crashed = true;
        this.node(args[0]!).inbox = [];
        break;
      case 'restart':
        this.restart(args[0]!);
        break;
      case 'compact': {
        const n = this.node(args[0]!);
        n.raft.compact(Number(args[1]), bytes(n.applied.join(',')));
        break;
      }
      case 'status':
        for (const id of this.ids(args)) out.push(this.statusLine(id));
        break;
      case 'lease':
        for (const id of this.ids(args)) out.push(this.leaseLine(id));
        break;
      case 'raft-log':
        for (const id of this.ids(args)) out.push(this.logLine(id));
        break;
      default:
        throw new Error(`unknown command ${command}`);
    }
    return out.length === 0 ? 'ok' : out.join('\n');
  }

  private addNodes(count: number, options: Record<string, string>): void {
    const ids = Array.from({ length: count }, (_, i) => String(this.nodes.size + i + 1));
    if (options['max-entries'] !== undefined) {
      for (const id of ids) this.overrides.set(id, { maxEntriesPerMsg: Number(options['max-entries']) });
    }
    const split = (key: string) => (options[key] ? options[key].split(',') : []);
    const witnesses = split('witnesses');
    const learners = split('learners');
    const confState: ConfState = {
      voters: ids.filter((id) => !witnesses.includes(id) && !learners.includes(id)),
      witnesses,
      learners,
    };
    for (const id of ids) {
      const durable: Durable = { hardState: { term: 0, vote: '', commit: 0 }, entries: [], confState };
      this.nodes.set(id, {
        raft: this.boot(id, durable, 0),
        clockMs: 0,
        durable,
        inbox: [],
        applied: [],
        crashed: false,
        paused: false,
      });
    }
  }

  private boot(id: NodeId, durable: Durable, clockMs: number): RaftNode {
    const config: Config = { id, ...SCENARIO_CONFIG, ...this.overrides.get(id) };
    const holder = { clockMs };
    const raft = new RaftNode(
      config,
      {
        hardState: { ...durable.hardState },
        entries: [...durable.entries],
        confState: durable.confState,
        ...(durable.snapshot ? { snapshot: durable.snapshot } : {}),
      },
      new SeededRng(Number(id) * 7919),
      () => this.nodes.get(id)?.clockMs ?? holder.clockMs,
    );
    return raft;
  }

  private restart(id: NodeId): void {
    const n = this.node(id);
    n.crashed = false;
    n.inbox = [];
    n.applied = n.durable.snapshot ? text.decode(n.durable.snapshot.data).split(',').filter(Boolean) : [];
    n.raft = this.boot(id, n.durable, n.clockMs);
  }

  private tick(count: number, ids: NodeId[]): void {
    for (let i = 0; i < count; i++) {
      for (const id of ids) {
        const n = this.node(id);
        n.clockMs += SCENARIO_CONFIG.tickMs;
        if (n.crashed || n.paused) continue;
        n.raft.tick();
      }
    }
  }

  private partition(groups: string[]): void {
    const sides = groups
      .join(' ')
      .split('|')
      .map((g) => g.trim().split(/\s+/).filter(Boolean));
    for (const a of sides) {
      for (const b of sides) {
        if (a === b) continue;
        for (const x of a) for (const y of b) this.cut.add(`${x}->${y}`);
      }
    }
  }

  private stabilize(ids: NodeId[], out: string[]): void {
    for (let round = 0; round < MAX_STABILIZE_ROUNDS; round++) {
      let progressed = false;
      for (const id of ids) {
        if (!this.active(id) || !this.node(id).raft.hasReady()) continue;
        this.processReady(id, out);
        progressed = true;
      }
      for (const id of ids) {
        if (!this.active(id) || this.node(id).inbox.length === 0) continue;
        this.deliver(id, out);
        progressed = true;
      }
      if (!progressed) return;
    }
    throw new Error('stabilize did not settle');
  }

  private processReady(id: NodeId, out: string[]): void {
    const n = this.node(id);
    if (!this.active(id) || !n.raft.hasReady()) return;
    const rd = n.raft.ready();
    out.push(`> ${id} ready${describeReady(rd)}`);
    if (rd.snapshot) {
      n.durable.snapshot = rd.snapshot;
      n.durable.entries = [];
      n.applied = text.decode(rd.snapshot.data).split(',').filter(Boolean);
    }
    if (rd.entries.length > 0) {
      const first = rd.entries[0]!.index;
      n.durable.entries = [...n.durable.entries.filter((e) => e.index < first), ...rd.entries];
    }
    if (rd.hardState) n.durable.hardState = rd.hardState;
    for (const m of rd.messages) {
      const target = this.nodes.get(m.to);
      if (target === undefined || target.crashed || this.cut.has(`${m.from}->${m.to}`)) {
        out.push(`  dropped ${describeMessage(m)}`);
        continue;
      }
      target.inbox.push(m);
    }
    for (const e of rd.committedEntries) if (e.type === 'normal') n.applied.push(text.decode(e.data));
    n.raft.advance(rd);
  }

  private active(id: NodeId): boolean {
    const n = this.node(id);
    return !n.crashed && !n.paused;
  }

  private deliver(id: NodeId, _out: string[]): void {
    const n = this.node(id);
    if (!this.active(id)) return;
    const inbox = n.inbox;
    n.inbox = [];
    for (const m of inbox) n.raft.step(m);
  }

  private statusLine(id: NodeId): string {
    const n = this.node(id);
    if (n.crashed) return `${id}: crashed`;
    const s = n.raft.status();
    const conf = `voters=${s.confState.voters.join(',')} witnesses=${s.confState.witnesses.join(',')} learners=${s.confState.learners.join(',')}`;
    const progress = Object.entries(s.progress)
      .map(([pid, p]) => `${pid}:${p.state}/m${p.match}/n${p.next}`)
      .join(' ');
    return (
      `${id}: ${s.role} term=${s.term} vote=${s.vote || '-'} leader=${s.leader || '-'} commit=${s.commit} ` +
      `applied=${s.applied} log=${s.firstIndex}..${s.lastIndex} ${conf}${progress ? ` progress=[${progress}]` : ''}`
    );
  }

  private leaseLine(id: NodeId): string {
    const n = this.node(id);
    const until = n.raft.leaseValidUntil();
    if (until === null) return `${id}: no lease (clock=${n.clockMs})`;
    return `${id}: lease until ${until} (clock=${n.clockMs}, ${n.clockMs < until ? 'valid' : 'expired'})`;
  }

  private logLine(id: NodeId): string {
    const n = this.node(id);
    const s = n.raft.status();
    const entries = n.raft
      .entries(s.firstIndex, s.lastIndex + 1)
      .map(describeEntry)
      .join(' ');
    return `${id}: [${entries}] applied=[${n.applied.join(',')}]`;
  }

  private ids(args: string[]): NodeId[] {
    const listed = args.filter((a) => !a.includes('='));
    return listed.length > 0 ? listed : [...this.nodes.keys()];
  }

  private node(id: NodeId): SimNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }
}

function kv(args: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of args) {
    const [k, v] = a.split('=');
    if (k !== undefined && v !== undefined) out[k] = v;
  }
  return out;
}

function describeEntry(e: Entry): string {
  if (e.type === 'noop') return `${e.term}/${e.index} noop`;
  if (e.type === 'confChange') {
    const cc = decodeConfChange(e.data);
    return `${e.term}/${e.index} conf:${cc.type}(${cc.node})`;
  }
  return `${e.term}/${e.index} ${text.decode(e.data)}`;
}

function describeReady(rd: Ready): string {
  const parts: string[] = [];
  if (rd.softState) parts.push(`\n  soft: ${rd.softState.role} leader=${rd.softState.leader || '-'}`);
  if (rd.hardState) {
    const hs = rd.hardState;
    parts.push(`\n  hard: term=${hs.term} vote=${hs.vote || '-'} commit=${hs.commit}`);
  }
  if (rd.snapshot) parts.push(`\n  snapshot: ${describeSnapshot(rd.snapshot)}`);
  if (rd.entries.length > 0) parts.push(`\n  entries: ${rd.entries.map(describeEntry).join(', ')}`);
  if (rd.committedEntries.length > 0) {
    parts.push(`\n  committed: ${rd.committedEntries.map(describeEntry).join(', ')}`);
  }
  for (const m of rd.messages) parts.push(`\n  ${describeMessage(m)}`);
  if (rd.mustSync) parts.push('\n  sync');
  return parts.join('');
}

function describeSnapshot(s: Snapshot): string {
  const c = s.metadata.confState;
  return `${s.metadata.term}/${s.metadata.index} voters=${c.voters.join(',')} data=[${text.decode(s.data)}]`;
}

export function describeMessage(m: Message): string {
  const head = `${m.from}->${m.to} ${m.type} term=${m.term}`;
  switch (m.type) {
    case 'app':
      return `${head} prev=${m.logTerm}/${m.index} commit=${m.commit} entries=[${m.entries.map(describeEntry).join(', ')}]`;
    case 'appResp':
      return m.reject ? `${head} reject index=${m.index} hint=${m.rejectHint}` : `${head} index=${m.index}`;
    case 'vote':
    case 'preVote':
      return `${head} last=${m.logTerm}/${m.index} fitness=${m.fitness}${m.transfer ? ' transfer' : ''}`;
    case 'voteResp':
    case 'preVoteResp':
      return `${head} ${m.reject ? 'rejected' : 'granted'}`;
    case 'heartbeat':
      return `${head} commit=${m.commit} round=${m.round}`;
    case 'heartbeatResp':
      return `${head} round=${m.round}`;
    case 'snap':
      return `${head} snapshot=${describeSnapshot(m.snapshot)}`;
    case 'timeoutNow':
      return head;
  }
}

export interface ScenarioBlock {
  comments: string[];
  command: string;
  expected: string;
}

/** Parses "# comment / command / ---- / output / blank line" blocks. */
export function parseScenario(source: string): ScenarioBlock[] {
  const lines = source.split('\n');
  const blocks: ScenarioBlock[] = [];
  let comments: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    if (line.trim() === '') {
      i++;
      continue;
    }
    if (line.startsWith('#')) {
      comments.push(line);
      i++;
      continue;
    }
    const command = line.trim();
    i++;
    const expected: string[] = [];
    if (lines[i] === '----') {
      i++;
      while (i < lines.length && lines[i]!.trim() !== '') expected.push(lines[i++]!);
    }
    blocks.push({ comments, command, expected: expected.join('\n') });
    comments = [];
  }
  return blocks;
}

export function formatScenario(blocks: { comments: string[]; command: string; output: string }[]): string {
  return `${blocks.map((b) => [...b.comments, b.command, '----', b.output].join('\n')).join('\n\n')}\n`;
}

/** Runs a scenario script; returns each block's actual output. */
export function runScenario(source: string): { block: ScenarioBlock; output: string }[] {
  const env = new InteractionEnv();
  return parseScenario(source).map((block) => {
    const [command, ...args] = block.command.split(/\s+/);
    return { block, output: env.run(command!, args) };
  });
}
