// Deterministic simulator of a Raft group built on the pure core: one seed
// reproduces a whole run. Simulated real time drives per-node clocks (drift
// within ρ, pauses), a faulty network, a disk that loses un-fsynced writes, and
// crashes with restart from durable state only. Invariants run after every event.
import { RaftNode } from '../../src/raft/core/raft-node.ts';
import { SeededRng } from '../../src/raft/core/rng.ts';
import type {
  Config,
  ConfState,
  Entry,
  HardState,
  Message,
  NodeId,
  Ready,
  Snapshot,
} from '../../src/raft/core/types.ts';
import {
  describeFault,
  type Fault,
  FOLLOWER_A,
  FOLLOWER_B,
  generateFaults,
  LEADER,
  leaseAttackFaults,
  pickSwarm,
  type Swarm,
} from './faults.ts';
import { fnv1a, hashString, mix } from './hash.ts';
import { Invariants, InvariantViolation, invariantFailure } from './invariants.ts';
import { Scheduler } from './scheduler.ts';

/**
 * safety: swarm faults, then a heal and a liveness check; failover: one leader
 * crash on a healthy network; leaseAttack: a targeted schedule against the lease
 * (see leaseAttackFaults), then the same heal and liveness check as safety.
 */
export type SimMode = 'safety' | 'failover' | 'leaseAttack';

export const SIM_RAFT_CONFIG = {
  tickMs: 50,
  heartbeatTicks: 2,
  electionTicks: 10,
  maxClockDrift: 0.01,
  leaseMs: 400,
  leaseStopMarginMs: 100,
  maxInflightMsgs: 8,
  maxEntriesPerMsg: 8,
} as const;

/** Faults happen in [FAULTS_FROM_MS, HEAL_AT_MS); then the network heals. */
const FAULTS_FROM_MS = 300;
const HEAL_AT_MS = 12_000;
/** Liveness: after healing, a leaseholder and a new commit within this bound. */
const LIVENESS_BOUND_MS = 6000;
const SAFETY_END_MS = HEAL_AT_MS + LIVENESS_BOUND_MS;
/** Failover: a new leaseholder within this much simulated time of the leader crash. */
export const FAILOVER_BOUND_MS = 2000;
const MAX_EVENTS = 400_000;
const MAX_INBOX = 10_000;

export interface SimOptions {
  seed: number;
  /** Keep only these indexes of the generated fault schedule (shrinking / replay). */
  keepFaults?: number[];
  /** Collect a human-readable trace. */
  trace?: boolean;
}

export interface SimResult {
  seed: number;
  mode: SimMode;
  ok: boolean;
  error?: string;
  faults: Fault[];
  events: number;
  traceHash: number;
  simulatedMs: number;
  commits: number;
  trace: string[];
  /** Failover mode: ms from the leader crash to the next leaseholder. */
  failoverMs?: number;
}

type SimEvent =
  | { k: 'tick'; node: NodeId; epoch: number }
  | { k: 'deliver'; msg: Message }
  | { k: 'diskDone'; node: NodeId; epoch: number }
  | { k: 'faultStart'; fault: Fault }
  | { k: 'faultEnd'; fault: Fault }
  | { k: 'restart'; node: NodeId }
  | { k: 'resume'; node: NodeId; until: number }
  | { k: 'propose' }
  | { k: 'admin' }
  | { k: 'heal' }
  | { k: 'crashLeader' };

interface Durable {
  hardState: HardState;
  snapshot?: Snapshot;
  entries: Entry[];
}

type WalRecord =
  | { t: 'snapshot'; snapshot: Snapshot }
  | { t: 'entries'; entries: Entry[] }
  | { t: 'hardState'; hardState: HardState };

interface Host {
  id: NodeId;
  raft: RaftNode;
  rate: number;
  offsetMs: number;
  epoch: number;
  crashed: boolean;
  pausedUntil: number;
  /** A Ready awaiting its fsync: nothing else runs on this node meanwhile. */
  syncing: Ready | null;
  inbox: Message[];
  missedTick: boolean;
  durable: Durable;
  /** Written but not yet fsynced, in WAL order. */
  unsynced: WalRecord[];
  /** Mirror of the in-memory log as hash chains: index → [term, chain]. */
  chain: Map<number, [number, number]>;
  baseIndex: number;
  baseChain: number;
  appliedIndex: number;
  appliedChain: number;
  lastTerm: number;
  lastCommit: number;
  wasLeaderInTerm: number;
  rng: SeededRng;
}

export class Simulation {
  readonly mode: SimMode;
  readonly swarm: Swarm;
  readonly faults: Fault[];
  private readonly ids: NodeId[];
  private readonly confState: ConfState;
  private readonly sched = new Scheduler<SimEvent>();
  private readonly hosts = new Map<NodeId, Host>();
  private readonly inv = new Invariants();
  private readonly linkRng = new Map<string, SeededRng>();
  private readonly diskRng: SeededRng;
  private readonly workloadRng: SeededRng;
  /** Leadership transfers and membership changes. */
  private readonly adminRng: SeededRng;
  private readonly cutLinks = new Map<string, number>();
  private readonly clogMs = new Map<string, number>();
  private healed = false;
  private traceHash = 0;
  private events = 0;
  private readonly traceLines: string[] | null;
  private leaseAfterHealAt: number | null = null;
  private commitsAtHeal = 0;
  private commitAfterHealAt: number | null = null;
  private leaderCrashedAt: number | null = null;
  private crashedLeader: NodeId | null = null;
  private failoverMs: number | null = null;
  /** leaseAttack mode: armed by the cut, fired by the attacker's first PreVote. */
  private attack: { leader: NodeId; attacker: NodeId; victim: NodeId } | null = null;

  constructor(private readonly options: SimOptions) {
    const root = new SeededRng(options.seed);
    const setupRng = root.split();
    const faultRng = root.split();
    const netRng = root.split();
    this.diskRng = root.split();
    this.workloadRng = root.split();
    const nodeRngRoot = root.split();
    this.adminRng = root.split();
    this.traceLines = options.trace ? [] : null;

    const modeDraw = setupRng.next();
    this.mode = modeDraw < 0.2 ? 'failover' : modeDraw < 0.35 ? 'leaseAttack' : 'safety';
    const count = setupRng.chance(0.3) ? 5 : 3;
    this.ids = Array.from({ length: count }, (_, i) => `n${i + 1}`);
    const withWitness = setupRng.chance(0.25);
    this.confState = {
      voters: withWitness ? this.ids.slice(0, -1) : [...this.ids],
      witnesses: withWitness ? this.ids.slice(-1) : [],
      learners: [],
    };
    this.swarm = pickSwarm(setupRng);
    if (this.mode !== 'safety') {
      this.swarm = {
        ...this.swarm,
        enabled: [],
        faultCount: 0,
        lossRate: 0,
        dupRate: 0,
        meanExtraDelayMs: 2,
      };
    }
    const all =
      this.mode === 'leaseAttack'
        ? leaseAttackFaults(faultRng)
        : generateFaults(faultRng, this.swarm, this.ids, FAULTS_FROM_MS, HEAL_AT_MS - 500);
    this.faults = options.keepFaults ? options.keepFaults.map((i) => all[i]!).filter(Boolean) : all;

    for (const from of this.ids)
      for (const to of this.ids) if (from !== to) this.linkRng.set(`${from}->${to}`, netRng.split());
    const rho = SIM_RAFT_CONFIG.maxClockDrift;
    for (const id of this.ids) {
      const r = setupRng.next();
      // Clocks at the extremes of the drift bound are what stresses the lease.
      const rate = r < 0.3 ? 1 - rho : r < 0.6 ? 1 + rho : 1 + setupRng.between(-rho, rho);
      const durable: Durable = { hardState: { term: 0, vote: '', commit: 0 }, entries: [] };
      const host: Host = {
        id,
        raft: undefined as unknown as RaftNode,
        rate,
        offsetMs: Math.round(setupRng.between(0, 100_000)),
        epoch: 0,
        crashed: false,
        pausedUntil: 0,
        syncing: null,
        inbox: [],
        missedTick: false,
        durable,
        unsynced: [],
        chain: new Map(),
        baseIndex: 0,
        baseChain: 0,
        appliedIndex: 0,
        appliedChain: 0,
        lastTerm: 0,
        lastCommit: 0,
        wasLeaderInTerm: 0,
        rng: nodeRngRoot.split(),
      };
      this.hosts.set(id, host);
      this.boot(host);
    }
    for (const f of this.faults) this.sched.schedule(f.atMs, { k: 'faultStart', fault: f });
    this.sched.schedule(this.workloadRng.between(100, 400), { k: 'propose' });
    if (this.mode !== 'failover') this.sched.schedule(HEAL_AT_MS, { k: 'heal' });
    if (this.mode === 'safety') this.sched.schedule(this.adminRng.between(500, 3000), { k: 'admin' });
    if (this.mode === 'failover') {
      this.sched.schedule(Math.round(this.workloadRng.between(3000, 4000)), { k: 'crashLeader' });
    }
  }

  private endMs(): number {
    return this.mode !== 'failover'
      ? SAFETY_END_MS
      : (this.leaderCrashedAt ?? 5000) + FAILOVER_BOUND_MS + 500;
  }

  run(): SimResult {
    let error: string | undefined;
    try {
      for (;;) {
        const next = this.sched.next();
        if (next === undefined || next.atMs > this.endMs()) break;
        if (++this.events > MAX_EVENTS)
          throw new InvariantViolation(`simulation exceeded ${MAX_EVENTS} events`);
        this.handle(next.event);
        this.checkAfterEvent();
      }
      this.checkEnd();
    } catch (e) {
      error = e instanceof InvariantViolation ? e.message : `crash: ${(e as Error).stack ?? String(e)}`;
    }
    const result: SimResult = {
      seed: this.options.seed,
      mode: this.mode,
      ok: error === undefined,
      faults: this.faults,
      events: this.events,
      traceHash: this.traceHash,
      simulatedMs: this.sched.nowMs,
      commits: this.inv.committedCount(),
      trace: this.traceLines ?? [],
    };
    if (error !== undefined) result.error = error;
    if (this.failoverMs !== null) result.failoverMs = this.failoverMs;
    return result;
  }

  // ---- time ----

  private localNow(h: Host): number {
    return h.offsetMs + h.rate * this.sched.nowMs;
  }

  private realIntervalFor(h: Host, localMs: number): number {
    return localMs / h.rate;
  }

  private trace(kind: string, node: NodeId, detail: number, line?: () => string): void {
    this.traceHash = mix(
      this.traceHash,
      hashString(kind),
      hashString(node),
      detail,
      Math.round(this.sched.nowMs * 1000),
    );
    if (this.traceLines !== null && line !== undefined) {
      this.traceLines.push(`${this.sched.nowMs.toFixed(3).padStart(10)} ${line()}`);
    }
  }

  // ---- node lifecycle ----

  private boot(h: Host): void {
    const config: Config = { id: h.id, ...SIM_RAFT_CONFIG };
    h.raft = new RaftNode(
      config,
      {
        hardState: { ...h.durable.hardState },
        entries: [...h.durable.entries],
        confState: this.confState,
        ...(h.durable.snapshot ? { snapshot: h.durable.snapshot } : {}),
      },
      h.rng.split(),
      () => this.localNow(h),
    );
    h.crashed = false;
    h.syncing = null;
    h.inbox = [];
    h.unsynced = [];
    h.missedTick = false;
    h.chain = new Map();
    const snap = h.durable.snapshot;
    h.baseIndex = snap?.metadata.index ?? 0;
    h.baseChain = snap ? decodeSnapshotChain(snap) : 0;
    h.appliedIndex = h.baseIndex;
    h.appliedChain = h.baseChain;
    this.appendToMirror(
      h,
      h.durable.entries.filter((e) => e.index > h.baseIndex),
    );
    // Only a term never acted upon may be lost in a crash: the durable term is the floor.
    h.lastTerm = h.durable.hardState.term;
    h.lastCommit = 0;
    h.wasLeaderInTerm = 0;
    this.scheduleTick(h);
  }

  private scheduleTick(h: Host): void {
    const epoch = h.epoch;
    this.sched.schedule(this.sched.nowMs + this.realIntervalFor(h, SIM_RAFT_CONFIG.tickMs), {
      k: 'tick',
      node: h.id,
      epoch,
    });
  }

  private crash(h: Host, downMs: number, tornTail: boolean): void {
    if (h.crashed) return;
    h.epoch++;
    h.crashed = true;
    // Un-fsynced writes are lost; a torn tail keeps some prefix of them (the WAL
    // truncates a half-written record, so a prefix is all that can survive).
    const keep = tornTail ? this.diskRng.intBelow(h.unsynced.length + 1) : 0;
    for (const rec of h.unsynced.slice(0, keep)) applyRecord(h.durable, rec);
    h.unsynced = [];
    h.syncing = null;
    h.inbox = [];
    this.trace('crash', h.id, keep, () => `${h.id} crash (kept ${keep} unsynced records)`);
    this.sched.schedule(this.sched.nowMs + downMs, { k: 'restart', node: h.id });
  }

  // ---- events ----

  private handle(ev: SimEvent): void {
    switch (ev.k) {
      case 'tick': {
        const h = this.hosts.get(ev.node)!;
        if (h.crashed || ev.epoch !== h.epoch) return;
        this.scheduleTick(h);
        if (this.sched.nowMs < h.pausedUntil || h.syncing !== null) {
          h.missedTick = true;
          return;
        }
        this.trace('tick', h.id, 0);
        h.raft.tick();
        this.pump(h);
        return;
      }
      case 'deliver': {
        const h = this.hosts.get(ev.msg.to)!;
        if (h.crashed) return;
        this.trace('deliver', h.id, hashString(ev.msg.type), () => `deliver ${describe(ev.msg)}`);
        if (this.sched.nowMs < h.pausedUntil || h.syncing !== null) {
          if (h.inbox.length >= MAX_INBOX) h.inbox.shift();
          h.inbox.push(ev.msg);
          return;
        }
        h.raft.step(ev.msg);
        this.pump(h);
        return;
      }
      case 'diskDone': {
        const h = this.hosts.get(ev.node)!;
        if (h.crashed || ev.epoch !== h.epoch || h.syncing === null) return;
        for (const rec of h.unsynced) applyRecord(h.durable, rec);
        h.unsynced = [];
        this.inv.recordVote(h.id, h.durable.hardState.term, h.durable.hardState.vote);
        const rd = h.syncing;
        h.syncing = null;
        this.trace('fsync', h.id, 0);
        this.complete(h, rd);
        this.drain(h);
        return;
      }
      case 'faultStart':
        this.startFault(ev.fault);
        return;
      case 'faultEnd':
        this.endFault(ev.fault);
        return;
      case 'restart': {
        const h = this.hosts.get(ev.node)!;
        if (!h.crashed) return;
        h.epoch++;
        this.trace('restart', h.id, 0, () => `${h.id} restart`);
        this.boot(h);
        return;
      }
      case 'resume': {
        const h = this.hosts.get(ev.node)!;
        if (h.crashed || this.sched.nowMs < h.pausedUntil || ev.until !== h.pausedUntil) return;
        this.trace('resume', h.id, 0, () => `${h.id} resume`);
        this.drain(h);
        return;
      }
      case 'propose':
        this.propose();
        return;
      case 'admin':
        this.admin();
        return;
      case 'heal':
        this.heal();
        return;
      case 'crashLeader': {
        const leader = this.currentLeaseholder();
        if (leader === null) {
          invariantFailure('failover: no leaseholder on a healthy network before the crash');
        }
        this.leaderCrashedAt = this.sched.nowMs;
        this.crashedLeader = leader.id;
        this.crash(leader, 60_000, false);
        return;
      }
    }
  }

  /** Runs queued inputs of a node that became free again, then its Ready loop. */
  private drain(h: Host): void {
    while (!h.crashed && h.syncing === null && this.sched.nowMs >= h.pausedUntil) {
      if (h.missedTick) {
        h.missedTick = false;
        h.raft.tick();
      } else {
        const m = h.inbox.shift();
        if (m === undefined) break;
        h.raft.step(m);
      }
      this.pump(h);
    }
    this.pump(h);
  }

  /** The driver's Ready loop: persist, fsync (async), then send, apply, advance. */
  private pump(h: Host): void {
    while (!h.crashed && h.syncing === null && h.raft.hasReady()) {
      const rd = h.raft.ready();
      this.persist(h, rd);
      if (rd.mustSync) {
        h.syncing = rd;
        const latency = this.diskRng.chance(0.05)
          ? this.diskRng.between(5, 40)
          : this.diskRng.between(0.05, 2);
        this.sched.schedule(this.sched.nowMs + latency, { k: 'diskDone', node: h.id, epoch: h.epoch });
        return;
      }
      this.complete(h, rd);
    }
  }

  private persist(h: Host, rd: Ready): void {
    if (rd.snapshot) {
      h.unsynced.push({ t: 'snapshot', snapshot: rd.snapshot });
      h.chain = new Map();
      h.baseIndex = rd.snapshot.metadata.index;
      h.baseChain = decodeSnapshotChain(rd.snapshot);
      const known = this.inv.chainOf(h.baseIndex, rd.snapshot.metadata.term);
      if (known !== undefined && known !== h.baseChain) {
        invariantFailure(`${h.id} received a snapshot that contradicts the log at ${h.baseIndex}`);
      }
      h.appliedIndex = h.baseIndex;
      h.appliedChain = h.baseChain;
      this.inv.recordApplied(h.id, h.baseIndex, h.baseChain);
    }
    if (rd.entries.length > 0) {
      h.unsynced.push({ t: 'entries', entries: rd.entries });
      const first = rd.entries[0]!.index;
      const st = h.raft.status();
      if (st.role === 'leader' && h.wasLeaderInTerm === st.term && first <= this.mirrorLast(h)) {
        invariantFailure(`leader append-only: leader ${h.id} overwrote its log from index ${first}`);
      }
      for (const idx of [...h.chain.keys()]) if (idx >= first) h.chain.delete(idx);
      this.appendToMirror(h, rd.entries);
    }
    if (rd.hardState) h.unsynced.push({ t: 'hardState', hardState: rd.hardState });
    if (rd.softState?.role === 'leader') {
      const term = h.raft.status().term;
      this.inv.recordLeader(h.id, term);
      this.inv.checkLeaderComplete(h.id, term, (i) => this.chainAt(h, i), h.baseIndex);
      h.wasLeaderInTerm = term;
    } else if (rd.softState !== undefined) {
      h.wasLeaderInTerm = 0;
    }
    if (rd.hardState) {
      for (let i = Math.max(h.lastCommit, h.baseIndex) + 1; i <= rd.hardState.commit; i++) {
        const chain = this.chainAt(h, i);
        if (chain === undefined) invariantFailure(`${h.id} committed index ${i} it does not hold`);
        this.inv.recordCommit(h.id, i, chain, rd.hardState.term);
      }
    }
  }

  private complete(h: Host, rd: Ready): void {
    for (const m of rd.messages) this.send(m);
    for (const e of rd.committedEntries) {
      if (e.index !== h.appliedIndex + 1)
        invariantFailure(`${h.id} applied ${e.index} after ${h.appliedIndex}`);
      const chain = this.chainAt(h, e.index);
      if (chain === undefined) invariantFailure(`${h.id} applied index ${e.index} it does not hold`);
      this.inv.recordApplied(h.id, e.index, chain);
      h.appliedIndex = e.index;
      h.appliedChain = chain;
    }
    h.raft.advance(rd);
    if (this.swarm.compactEvery > 0 && h.appliedIndex - h.baseIndex >= this.swarm.compactEvery)
      this.compact(h);
  }

  private compact(h: Host): void {
    const index = h.appliedIndex;
    const data = encodeSnapshotChain(h.appliedChain);
    h.raft.compact(index, data);
    const term = h.chain.get(index)![0];
    // The application persists its snapshot itself (temp file, fsync, rename).
    const snapshot: Snapshot = { metadata: { index, term, confState: h.raft.status().confState }, data };
    applyRecord(h.durable, { t: 'snapshot', snapshot }, true);
    for (const idx of [...h.chain.keys()]) if (idx <= index) h.chain.delete(idx);
    h.baseIndex = index;
    h.baseChain = h.appliedChain;
  }

  private appendToMirror(h: Host, entries: Entry[]): void {
    for (const e of entries) {
      const prev = this.chainAt(h, e.index - 1);
      if (prev === undefined) invariantFailure(`${h.id} log has a gap before ${e.index}`);
      const chain = mix(prev, e.term, hashString(e.type), fnv1a(e.data));
      h.chain.set(e.index, [e.term, chain]);
      this.inv.recordEntry(h.id, e.index, e.term, chain);
    }
  }

  private chainAt(h: Host, index: number): number | undefined {
    if (index === h.baseIndex) return h.baseChain;
    return h.chain.get(index)?.[1];
  }

  private mirrorLast(h: Host): number {
    let last = h.baseIndex;
    while (h.chain.has(last + 1)) last++;
    return last;
  }

  // ---- network ----

  private send(m: Message): void {
    const link = `${m.from}->${m.to}`;
    const attack = this.attack;
    if (attack !== null && m.type === 'preVote' && m.from === attack.attacker && m.to === attack.victim) {
      this.attack = { ...attack, attacker: '' };
      const victim = this.hosts.get(attack.victim)!;
      const cut = `${attack.leader}->${attack.victim}`;
      this.cutLinks.set(cut, (this.cutLinks.get(cut) ?? 0) + 1);
      this.sched.schedule(this.sched.nowMs + 4000, {
        k: 'faultEnd',
        fault: {
          kind: 'oneWay',
          atMs: this.sched.nowMs,
          durationMs: 4000,
          from: attack.leader,
          to: attack.victim,
        },
      });
      this.crash(victim, 0.01, false);
    }
    if (!this.hosts.has(m.to)) return;
    if ((this.cutLinks.get(link) ?? 0) > 0) return;
    const rng = this.linkRng.get(link)!;
    if (!this.healed && rng.chance(this.swarm.lossRate)) return;
    const copies = !this.healed && rng.chance(this.swarm.dupRate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const delay =
        this.swarm.minDelayMs +
        -Math.log(1 - rng.next()) * this.swarm.meanExtraDelayMs +
        (this.clogMs.get(link) ?? 0);
      this.sched.schedule(this.sched.nowMs + delay, { k: 'deliver', msg: m });
    }
  }

  private startFault(planned: Fault): void {
    if (this.healed) return;
    const f = this.resolveLeader(planned);
    if (this.mode === 'leaseAttack' && f.kind === 'oneWay' && this.attack === null) {
      this.attack = {
        leader: f.from,
        attacker: f.to,
        victim: this.ids.find((id) => id !== f.from && id !== f.to)!,
      };
      // Cut both ways, so that the leader does not learn the attacker's new term and step down.
      this.sched.schedule(this.sched.nowMs, {
        k: 'faultStart',
        fault: { kind: 'oneWay', atMs: this.sched.nowMs, durationMs: f.durationMs, from: f.to, to: f.from },
      });
    }
    this.trace('fault', '', hashString(f.kind), () => `fault ${describeFault(f)}`);
    switch (f.kind) {
      case 'partition':
        for (const link of partitionLinks(f.groups))
          this.cutLinks.set(link, (this.cutLinks.get(link) ?? 0) + 1);
        break;
      case 'oneWay': {
        const link = `${f.from}->${f.to}`;
        this.cutLinks.set(link, (this.cutLinks.get(link) ?? 0) + 1);
        break;
      }
      case 'clog':
        this.clogMs.set(`${f.from}->${f.to}`, f.extraDelayMs);
        break;
      case 'pause': {
        const h = this.hosts.get(f.node)!;
        if (h.crashed) return;
        const until = Math.max(h.pausedUntil, this.sched.nowMs + f.durationMs);
        h.pausedUntil = until;
        this.sched.schedule(until, { k: 'resume', node: h.id, until });
        return;
      }
      case 'crash':
        this.crash(this.hosts.get(f.node)!, f.durationMs, f.tornTail);
        return;
    }
    this.sched.schedule(this.sched.nowMs + f.durationMs, { k: 'faultEnd', fault: f });
  }

  /** Replaces LEADER by the node leading now (or the first node if none leads). */
  private resolveLeader(f: Fault): Fault {
    let leader: NodeId = this.ids[0]!;
    let bestTerm = -1;
    for (const h of this.hosts.values()) {
      if (h.crashed) continue;
      const st = h.raft.status();
      if (st.role === 'leader' && st.term > bestTerm) {
        bestTerm = st.term;
        leader = h.id;
      }
    }
    const followers = this.ids.filter((id) => id !== leader);
    const resolve = (id: NodeId) =>
      id === LEADER ? leader : id === FOLLOWER_A ? followers[0]! : id === FOLLOWER_B ? followers[1]! : id;
    if (f.kind === 'pause' || f.kind === 'crash') return { ...f, node: resolve(f.node) };
    if (f.kind === 'oneWay' || f.kind === 'clog') {
      const from = resolve(f.from);
      const to = resolve(f.to) === from ? followers[0]! : resolve(f.to);
      return { ...f, from, to };
    }
    return f;
  }

  private endFault(f: Fault): void {
    if (this.healed) return;
    const release = (link: string) =>
      this.cutLinks.set(link, Math.max(0, (this.cutLinks.get(link) ?? 0) - 1));
    if (f.kind === 'partition') for (const link of partitionLinks(f.groups)) release(link);
    else if (f.kind === 'oneWay') release(`${f.from}->${f.to}`);
    else if (f.kind === 'clog') this.clogMs.delete(`${f.from}->${f.to}`);
  }

  /** Liveness mode: the network heals, paused nodes resume, crashed nodes restart. */
  private heal(): void {
    this.healed = true;
    this.commitsAtHeal = this.inv.committedCount();
    this.cutLinks.clear();
    this.clogMs.clear();
    this.trace('heal', '', 0, () => 'heal');
    for (const h of this.hosts.values()) {
      if (h.crashed) {
        h.epoch++;
        this.boot(h);
      } else if (h.pausedUntil > this.sched.nowMs) {
        h.pausedUntil = this.sched.nowMs;
        this.drain(h);
      }
    }
  }

  // ---- workload ----

  private propose(): void {
    if (this.mode === 'leaseAttack' && !this.healed) {
      this.sched.schedule(HEAL_AT_MS, { k: 'propose' });
      return;
    }
    this.sched.schedule(
      this.sched.nowMs + this.workloadRng.between(20, this.workloadRng.chance(0.2) ? 1500 : 300),
      {
        k: 'propose',
      },
    );
    for (const h of this.hosts.values()) {
      if (h.crashed || h.syncing !== null || this.sched.nowMs < h.pausedUntil) continue;
      if (h.raft.status().role !== 'leader') continue;
      const data = new Uint8Array(8);
      for (let i = 0; i < 8; i++) data[i] = this.workloadRng.intBelow(256);
      const r = h.raft.propose(data);
      this.trace('propose', h.id, r.ok ? r.index : 0);
      this.pump(h);
    }
  }

  /**
   * Before the heal: a leadership transfer to a random voter, or one step of a
   * single-server membership cycle of the last node (remove → learner → voter).
   */
  private admin(): void {
    if (this.healed) return;
    this.sched.schedule(this.sched.nowMs + this.adminRng.between(300, 3000), { k: 'admin' });
    for (const h of this.hosts.values()) {
      if (h.crashed || h.syncing !== null || this.sched.nowMs < h.pausedUntil) continue;
      const st = h.raft.status();
      if (st.role !== 'leader') continue;
      const cycled = this.ids[this.ids.length - 1]!;
      if (this.adminRng.chance(0.5) || this.confState.witnesses.length > 0 || this.ids.length < 5) {
        const others = st.confState.voters.filter((id) => id !== h.id);
        const to = others[this.adminRng.intBelow(others.length)];
        if (to === undefined) continue;
        const started = h.raft.transferLeader(to);
        this.trace('transfer', h.id, started ? 1 : 0, () => `${h.id} transfer to ${to}: ${started}`);
      } else {
        const cs = st.confState;
        const type = cs.voters.includes(cycled)
          ? 'remove'
          : cs.learners.includes(cycled)
            ? 'addVoter'
            : 'addLearner';
        const r = h.raft.proposeConfChange({ type, node: cycled });
        this.trace(
          'conf',
          h.id,
          r.ok ? 1 : 0,
          () => `${h.id} conf ${type} ${cycled}: ${r.ok ? 'proposed' : r.reason}`,
        );
      }
      this.pump(h);
    }
  }

  // ---- invariants ----

  private currentLeaseholder(): Host | null {
    for (const h of this.hosts.values()) {
      if (h.crashed) continue;
      const until = h.raft.leaseValidUntil();
      if (until !== null && this.localNow(h) < until) return h;
    }
    return null;
  }

  private checkAfterEvent(): void {
    let holder: NodeId | null = null;
    for (const h of this.hosts.values()) {
      if (h.crashed) continue;
      const st = h.raft.status();
      if (st.term < h.lastTerm) invariantFailure(`term regressed on ${h.id}: ${h.lastTerm} -> ${st.term}`);
      if (st.commit < h.lastCommit)
        invariantFailure(`commit regressed on ${h.id}: ${h.lastCommit} -> ${st.commit}`);
      h.lastTerm = st.term;
      h.lastCommit = Math.max(h.lastCommit, st.commit);
      // The full lease, without the stop margin: the strictest reading of "one lease".
      const expires = h.raft.leaseExpiresAt();
      if (expires !== null && this.localNow(h) < expires) {
        if (holder !== null) {
          invariantFailure(`two leases at ${this.sched.nowMs.toFixed(3)}ms: ${holder} and ${h.id}`);
        }
        holder = h.id;
      }
    }
    const now = this.sched.nowMs;
    if (this.mode !== 'failover' && this.healed) {
      if (this.leaseAfterHealAt === null && this.currentLeaseholder() !== null) this.leaseAfterHealAt = now;
      if (this.commitAfterHealAt === null && this.inv.committedCount() > this.commitsAtHeal)
        this.commitAfterHealAt = now;
    }
    if (this.mode === 'failover' && this.leaderCrashedAt !== null && this.failoverMs === null) {
      const h = this.currentLeaseholder();
      if (h !== null && h.id !== this.crashedLeader) this.failoverMs = now - this.leaderCrashedAt;
    }
  }

  private checkEnd(): void {
    if (this.mode !== 'failover') {
      if (this.leaseAfterHealAt === null || this.commitAfterHealAt === null) {
        invariantFailure(
          `liveness: within ${LIVENESS_BOUND_MS}ms of healing, ` +
            `${this.leaseAfterHealAt === null ? 'no node held a lease' : 'nothing new was committed'}`,
        );
      }
    } else if (this.failoverMs === null || this.failoverMs > FAILOVER_BOUND_MS) {
      invariantFailure(`failover: no new leaseholder within ${FAILOVER_BOUND_MS}ms of the leader crash`);
    }
  }
}

function partitionLinks(groups: NodeId[][]): string[] {
  const links: string[] = [];
  for (const a of groups)
    for (const b of groups) if (a !== b) for (const x of a) for (const y of b) links.push(`${x}->${y}`);
  return links;
}

function applyRecord(d: Durable, rec: WalRecord, fromCompaction = false): void {
  if (rec.t === 'snapshot') {
    d.snapshot = rec.snapshot;
    const index = rec.snapshot.metadata.index;
    d.entries = fromCompaction ? d.entries.filter((e) => e.index > index) : [];
  } else if (rec.t === 'entries') {
    const first = rec.entries[0]!.index;
    d.entries = [...d.entries.filter((e) => e.index < first), ...rec.entries];
  } else {
    d.hardState = rec.hardState;
  }
}

function encodeSnapshotChain(chain: number): Uint8Array {
  return new TextEncoder().encode(String(chain));
}

function decodeSnapshotChain(s: Snapshot): number {
  return Number(new TextDecoder().decode(s.data));
}

function describe(m: Message): string {
  return `${m.from}->${m.to} ${m.type} t${m.term}`;
}

export function runSeed(options: SimOptions): SimResult {
  return new Simulation(options).run();
}
