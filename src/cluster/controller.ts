// The per-sidecar control loop of failover. It runs the Raft driver, applies the
// committed control commands, and turns the pure decisions of failover-policy.ts
// into PostgreSQL actions: promote when this node leads a new term, follow the
// applied primary, demote a primary of an older term, fence when the lease is
// lost, hand leadership over when PostgreSQL fails. One action runs at a time;
// every decision is re-taken from fresh state on each pass.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { AdminResult, ClusterAdmin, ClusterReader, LocalHealth } from '../api/routes/types.ts';
import type { Config } from '../config/schema.ts';
import { deferred, type Service } from '../lifecycle.ts';
import type { Logger } from '../log.ts';
import { type FollowTarget, type PostgresInstance, slotNameFor } from '../postgres/instance.ts';
import { formatLsn, lagBytes } from '../postgres/lsn.ts';
import type { PostgresProbe, ProbeResult } from '../postgres/probe.ts';
import type { ConfState } from '../raft/core/types.ts';
import { type RaftChange, RaftDriver } from '../raft/driver.ts';
import type { PostgresSupervisor } from '../sidecar/postgres-supervisor.ts';
import type { SyncStandbyManager } from '../sidecar/sync-manager.ts';
import { type ClusterCommand, encodeCommand, type MemberSpec } from './commands.ts';
import type { FailoverConfig } from './config.ts';
import { ControlClient } from './control-client.ts';
import {
  type BackupCandidate,
  followerAction,
  type LocalPostgresState,
  mayCampaign,
  shouldSelfFence,
  transferTarget,
  vetoesEveryVote,
} from './failover-policy.ts';
import { leaseGate } from './lease-gate.ts';
import { forwardMembership, MembershipRunner, peerUpdates } from './membership.ts';
import { ClusterMetrics, type ProxyStats } from './metrics.ts';
import {
  ensureSlots,
  fitnessOf,
  followPrimary,
  followTargetOf,
  promoteWithQuorum,
  rebuildFrom,
  replayState,
  rewindOnto,
  setQuorum,
  stopFollowing,
} from './postgres-actions.ts';
import { type LocalKnowledge, RaftTopology } from './raft-topology.ts';
import { ClusterStore } from './store.ts';
import { clearHandoverRecord, readHandoverRecord, runSwitchover, type SwitchoverHost } from './switchover.ts';
import { rejoinWithoutRewind } from './switchover-policy.ts';
import type { NodeRole } from './view.ts';

export interface FailoverParts {
  config: Config;
  logger: Logger;
  /** This member's PostgreSQL and what drives it; all four are absent on a witness. */
  instance?: PostgresInstance;
  probe?: PostgresProbe;
  supervisor?: PostgresSupervisor;
  syncStandbys?: SyncStandbyManager;
  /** Client and held-request counts of this sidecar's proxy, when it runs one. */
  proxyStats?: () => ProxyStats | null;
  /** Write sessions of this sidecar's proxy busy on a backend (see ProxyServer.writesInFlight). */
  proxyWritesInFlight?: () => number | null;
  /** Status JSON of the foundation (nodes, pids, ports) that GET /cluster extends. */
  baseStatus?: () => Record<string, unknown>;
  /** Local monotonic clock (ms). */
  clock?: () => number;
}

const PROMOTE_POLL_MS = 10;
/** Last applied primary, so a restarted sidecar starts PostgreSQL in the right role before Raft catches up. */
const STATE_FILE = 'failover-state.json';
const HEALTH_REPORT_EVERY_MS = 1000;
const DURABILITY_REPORT_MIN_MS = 1000;
const MAX_LSN = 0xffff_ffff_ffff_ffffn;
/** A primary whose PostgreSQL died restarts it in place only when no backup qualified for this long. */
const RESTART_IN_PLACE_AFTER_MS = 3000;
const ADMIN_WAIT_POLL_MS = 50;

interface PeerHealth {
  atMs: number;
  health: LocalHealth;
}

export function memberSpecs(config: Config): MemberSpec[] {
  return config.members.map((m) => ({
    name: m.name,
    kind: m.kind,
    host: m.host,
    raftPort: m.raftPort,
    apiPort: m.apiPort,
    pgPort: m.pgPort ?? null,
    proxyPort: m.proxyPort ?? null,
  }));
}

export class FailoverController implements Service, ClusterReader, ClusterAdmin {
  readonly store: ClusterStore;
  readonly topology: RaftTopology;
  readonly driver: RaftDriver;
  readonly metrics: ClusterMetrics;
  private readonly parts: FailoverParts;
  private readonly control: ControlClient;
  private readonly settings: FailoverConfig;
  private readonly self: string;
  private readonly clock: () => number;
  private readonly log: Logger;
  private readonly ended = deferred<void>();
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private acting: Promise<void> | null = null;
  private healthPolling = false;
  private lastHealthPollMs = 0;
  private readonly peers = new Map<string, PeerHealth>();
  /** Raft addresses the transport knows, kept equal to the applied membership by syncPeers. */
  private readonly peerAddresses: Map<string, { host: string; port: number }>;
  private readonly membership: MembershipRunner;
  private readonly reported = new Map<string, { atMs: number; key: string }>();
  private following: string | null | undefined = undefined;
  private lastStreamingAtMs: number | null = null;
  private leaseLastValidAtMs: number | null = null;
  /** When Raft started here: the campaign fallback counts leaderless time from it. */
  private startedAtMs: number;
  private lastLeaderContactMs: number;
  private pgCrashed = false;
  private lastRole: NodeRole = 'unknown';
  private leaderLostAtMs: number | null = null;
  private lastDurability: string | null = null;
  private maxVoteFitness = 0n;
  /** The fitness last given to the Raft node (what its vote requests carry); null before the first tick. */
  private fitnessSent: bigint | null = null;
  private pgFailedAtMs: number | null = null;
  /** PostgreSQL was stopped by the self-fence (not crashed): see voteFitness. */
  private selfFenced = false;
  private lastDurabilityAtMs = Number.NEGATIVE_INFINITY;
  private switchoverRunning = false;
  /** A switchover intent was applied and no promotion since: the next one is planned. */
  private switchoverAnnounced = false;
  /** This leader stopped its PostgreSQL to hand over (switchover.ts): no failure handling meanwhile. */
  private handingOver = false;

  constructor(parts: FailoverParts) {
    this.parts = parts;
    const { config } = parts;
    this.settings = config.failover;
    this.self = config.node.name;
    this.clock = parts.clock ?? (() => performance.now());
    this.log = parts.logger;
    this.startedAtMs = this.clock();
    this.lastLeaderContactMs = this.startedAtMs;
    this.control = new ControlClient(() => this.pg.instance.clientConfig());
    const members = memberSpecs(config);
    const me = members.find((m) => m.name === this.self);
    if (me === undefined) throw new Error(`node ${this.self} is not in members`);
    this.store = new ClusterStore(members);
    this.store.on('applied', ({ outcome, term }) => {
      const type = outcome.command.type;
      if (outcome.kind === 'applied' && (type === 'member-add' || type === 'member-remove')) this.syncPeers();
      this.onApplied(outcome, term);
    });
    this.store.on('restored', () => this.syncPeers());
    const secret = config.cluster.secret ?? `pgward-insecure-default-${config.cluster.name}`;
    if (config.cluster.secret === undefined) {
      this.log.warn('cluster.secret is not set: Raft frames are authenticated with a default key; set one');
    }
    const peers = new Map(
      members.filter((m) => m.name !== this.self).map((m) => [m.name, { host: m.host, port: m.raftPort }]),
    );
    this.peerAddresses = new Map(peers);
    this.driver = new RaftDriver({
      id: this.self,
      timing: config.raft,
      dataDir: config.raft.dataDir ?? path.join(config.node.dataDir, 'raft'),
      bootstrap: {
        voters: members.filter((m) => m.kind === 'member').map((m) => m.name),
        witnesses: members.filter((m) => m.kind === 'witness').map((m) => m.name),
        learners: [],
      },
      listen: { host: me.host, port: me.raftPort },
      peers,
      clusterId: config.cluster.name,
      secret,
      logger: this.log.child({ component: 'raft' }),
      stateMachine: {
        apply: (entries) => this.store.apply(entries),
        restore: (snapshot) => this.store.restore(snapshot.data),
        snapshot: () => this.store.snapshot(),
      },
      clock: this.clock,
    });
    this.membership = new MembershipRunner({
      self: this.self,
      log: this.log,
      members: () => this.store.state.members.map((m) => m.spec),
      primary: () => this.store.state.primary,
      conf: () => this.driverStatus()?.confState ?? null,
      commit: (command) => this.commit(command),
      proposeConfChange: (change) => this.driver.proposeConfChange(change),
      ensureSlot: (name) => ensureSlots(this.control, [name]),
      dropSlot: async (name) => {
        const rows = await this.control.query<{ dropped: boolean }>(
          `SELECT pg_drop_replication_slot(slot_name) IS NULL AS dropped FROM pg_replication_slots
            WHERE slot_name = $1 AND NOT active`,
          [slotNameFor(name)],
        );
        return rows.length > 0;
      },
    });
    this.topology = new RaftTopology(() => this.knowledge(), this.clock);
    this.metrics = new ClusterMetrics(
      {
        term: () => this.currentTerm(),
        role: () => this.role(),
        lagBytes: () => this.parts.probe?.last()?.lagBytes ?? null,
        leaseValid: () => this.gate().open,
        durability: () => this.durabilityMode(),
        proxy: () => this.parts.proxyStats?.() ?? null,
      },
      { cluster: config.cluster.name, node: this.self },
    );
  }

  get done(): Promise<void> {
    return this.ended.promise;
  }

  /** A witness votes and never campaigns; a sidecar without PostgreSQL is one whatever the log says. */
  get isWitness(): boolean {
    return this.parts.instance === undefined || this.memberSpec(this.self)?.kind === 'witness';
  }

  /** The PostgreSQL parts; only the member passes reach for them (a witness returns before). */
  private get pg(): Required<Pick<FailoverParts, 'instance' | 'probe' | 'supervisor' | 'syncStandbys'>> {
    const { instance, probe, supervisor, syncStandbys } = this.parts;
    if (
      instance === undefined ||
      probe === undefined ||
      supervisor === undefined ||
      syncStandbys === undefined
    )
      throw new Error(`${this.self} runs no PostgreSQL (a witness): no database action applies`);
    return { instance, probe, supervisor, syncStandbys };
  }

  async start(): Promise<void> {
    this.running = true;
    // A backup's first start clones the primary for a while before this runs.
    this.startedAtMs = this.clock();
    this.lastLeaderContactMs = this.startedAtMs;
    this.parts.supervisor?.on('crashed', () => {
      this.pgCrashed = true;
      this.kick();
    });
    this.parts.probe?.on('result', (result) => {
      this.pgCrashed = false;
      this.selfFenced = false;
      if (result.walReceiverStatus === 'streaming') this.lastStreamingAtMs = this.clock();
    });
    this.driver.onChange((change) => this.onRaftChange(change));
    this.driver.onStall((gapMs) => {
      this.log.warn('event loop stalled: lease voided', { event: 'stall', gapMs: Math.round(gapMs) });
      this.kick();
    });
    await this.driver.start();
    this.syncPeers();
    this.timer = setInterval(() => this.kick(), this.settings.loopMs);
    this.kick();
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.acting?.catch(() => {});
    await this.driver.stop();
    this.control.close();
    this.ended.resolve();
  }

  // ---------------------------------------------------------------- reading

  /**
   * Whom this node's PostgreSQL should follow when the supervisor (re)starts it:
   * the applied primary, or before Raft has caught up after a restart the last
   * primary this node applied (kept on disk); undefined when it never knew one.
   */
  followTarget(): FollowTarget | null | undefined {
    const primary = this.store.state.primary ?? this.persistedPrimary();
    if (primary === null) return undefined;
    if (primary === this.self) return null;
    const spec = this.memberSpec(primary);
    return spec === undefined ? undefined : followTargetOf(spec, this.self);
  }

  currentTerm(): number {
    return this.driverStatus()?.term ?? 0;
  }

  role(): NodeRole {
    if (this.isWitness) return 'witness';
    const view = this.topology.current();
    return view.members.find((m) => m.name === this.self)?.role ?? 'unknown';
  }

  health(): LocalHealth {
    const probe = this.parts.probe?.last() ?? null;
    const pgHealthy = this.pgHealthy();
    const fitness = pgHealthy ? fitnessOf(probe) : null;
    const role: NodeRole = this.isWitness
      ? 'witness'
      : !pgHealthy
        ? 'down'
        : this.gate().open
          ? 'primary'
          : probe?.role === 'backup'
            ? 'backup'
            : 'unknown';
    return {
      node: this.self,
      kind: this.isWitness ? 'witness' : 'member',
      role,
      term: this.currentTerm(),
      writable: this.gate().open,
      pgHealthy,
      streaming: probe?.walReceiverStatus === 'streaming',
      lagBytes: this.backupLagBytes(probe),
      lsn: fitness === null ? null : fitness.toString(),
      campaignable: this.campaignAllowed(),
      switchoverHold: this.store.state.switchover?.term ?? null,
      writesInFlight: this.parts.proxyWritesInFlight?.() ?? null,
      voteFitness: this.fitnessSent === null ? null : this.fitnessSent.toString(),
    };
  }

  status(): Record<string, unknown> {
    const view = this.topology.current();
    const state = this.store.state;
    const base = this.parts.baseStatus?.() ?? {};
    const nodes = Array.isArray(base.nodes) ? (base.nodes as Array<Record<string, unknown>>) : [];
    const viewRoles = new Map(view.members.map((m) => [m.name, m]));
    return {
      ...base,
      cluster: this.parts.config.cluster.name,
      term: view.term,
      primary: view.primary ?? (state.promotedTerm === view.term ? state.primary : null),
      writablePrimary: view.primary,
      reportedBy: this.self,
      leader: this.driverStatus()?.leader ?? null,
      /** The Raft configuration this sidecar applied: voters campaign, witnesses only vote. */
      raftMembers: this.driverStatus()?.confState ?? null,
      promotedAtLsn: view.promotedAtLsn === null ? null : view.promotedAtLsn.toString(),
      durability: state.durability,
      switchover: state.switchover,
      members: view.members.map((m) => ({ ...m, lsn: m.lsn === null ? null : m.lsn.toString() })),
      nodes: nodes.map((n) => {
        const member = viewRoles.get(String(n.name));
        if (member === undefined) return n;
        const role = n.name === this.self ? this.health().role : member.role;
        return { ...n, role };
      }),
    };
  }

  // ---------------------------------------------------------------- admin

  async switchover(request: { to?: string }): Promise<AdminResult> {
    if (!this.isLeader()) return this.forwardToLeader('/switchover', request);
    if (this.switchoverRunning) return { ok: false, status: 409, message: 'a switchover is already running' };
    const target = request.to ?? this.bestTarget();
    const refusal = this.checkTarget(target);
    if (refusal !== null) return refusal;
    this.switchoverRunning = true;
    try {
      return await runSwitchover(this.switchoverHost(), target as string, this.currentTerm());
    } finally {
      this.switchoverRunning = false;
    }
  }

  async failover(request: { to?: string }): Promise<AdminResult> {
    if (!this.isLeader()) return this.forwardToLeader('/failover', request);
    const target = request.to ?? this.bestTarget();
    const refusal = this.checkTarget(target);
    if (refusal !== null) return refusal;
    const term = this.currentTerm();
    this.log.info('manual failover', { event: 'failover', to: target, term });
    if (!(await this.driver.transferLeader(target as string))) {
      return { ok: false, status: 409, message: `leadership cannot move to ${target} now; retry` };
    }
    const promoted = await this.waitFor(
      () => this.store.state.primary === target && this.store.state.promotedTerm > term,
      this.settings.switchoverTimeoutMs,
    );
    return promoted
      ? { ok: true, message: `${target} is the primary`, detail: { term: this.store.state.promotedTerm } }
      : {
          ok: false,
          status: 503,
          message: `${target} did not take over within ${this.settings.switchoverTimeoutMs} ms`,
        };
  }

  async addMember(member: MemberSpec): Promise<AdminResult> {
    if (!this.isLeader()) return this.forwardMembership('POST', '/members', member);
    return this.membership.add(member);
  }

  async removeMember(name: string): Promise<AdminResult> {
    if (!this.isLeader()) return this.forwardMembership('DELETE', `/members/${encodeURIComponent(name)}`);
    return this.membership.remove(name);
  }

  private forwardMembership(method: 'POST' | 'DELETE', route: string, body?: unknown): Promise<AdminResult> {
    const leader = this.driverStatus()?.leader ?? '';
    const spec = leader === '' ? undefined : this.memberSpec(leader);
    const api = spec === undefined ? null : `http://${spec.host}:${spec.apiPort}`;
    return forwardMembership(api, this.parts.config.api.token, method, route, body, 30_000);
  }

  /** Points the Raft transport at the applied membership (added members, removed ones). */
  private syncPeers(): void {
    let conf: ConfState | null = null;
    try {
      conf = this.driver.status().confState;
    } catch {
      return; // not started: start() syncs once it is
    }
    const { set, remove } = peerUpdates(
      this.peerAddresses,
      this.store.state.members.map((m) => m.spec),
      conf,
      this.self,
    );
    for (const [name, address] of set) {
      this.driver.setPeerAddress(name, address);
      this.peerAddresses.set(name, address);
    }
    for (const name of remove) {
      this.driver.removePeer(name);
      this.peerAddresses.delete(name);
    }
  }

  // ---------------------------------------------------------------- the loop

  /** Schedules one pass; passes never overlap (each may await PostgreSQL). */
  private kick(): void {
    if (!this.running) return;
    // A removal applied in the same batch as its conf change left the peer in place: drop it now.
    if (this.peerAddresses.size !== this.store.state.members.filter((m) => m.spec.name !== this.self).length)
      this.syncPeers();
    this.refreshRaftInputs();
    this.topology.refresh();
    this.maybePollHealth();
    if (this.acting !== null) return;
    this.acting = this.pass()
      .catch((error: Error) => {
        this.log.error('failover step failed; retrying', { error: error.message });
      })
      .finally(() => {
        this.acting = null;
      });
  }

  private refreshRaftInputs(): void {
    const status = this.driverStatus();
    if (status === null) return;
    const now = this.clock();
    if (status.leader !== '' && (status.role === 'leader' || this.driverLeaderContact(now))) {
      this.lastLeaderContactMs = now;
    }
    const gate = this.gate();
    if (gate.open) this.leaseLastValidAtMs = now;
    this.fitnessSent = this.voteFitness();
    this.driver.setFitness(this.fitnessSent);
    this.driver.setCampaignAllowed(this.campaignAllowed());
  }

  private async pass(): Promise<void> {
    if (this.isWitness) return;
    const status = this.driverStatus();
    if (status === null) return;
    await this.fenceIfLeaseLost();
    if (status.role === 'leader') await this.leaderPass(status.term);
    else await this.followerPass();
    this.noteRole();
    this.noteDurability();
  }

  private async leaderPass(term: number): Promise<void> {
    const state = this.store.state;
    const { instance, supervisor } = this.pg;
    const promoted = state.promotedTerm === term && state.primary === this.self;
    supervisor.setAutoRestart(false);
    // A switchover stopped PostgreSQL on purpose and is handing leadership over.
    if (this.handingOver) return;
    const pgFailed = (!this.pgHealthy() && this.pg.probe.last() !== null) || !instance.isRunning();
    if (!pgFailed) this.pgFailedAtMs = null;
    if (pgFailed) {
      const now = this.clock();
      this.pgFailedAtMs ??= now;
      // Pick the target from health read after the failure: the backups' LSNs have
      // stopped moving by then, so the most advanced one is really the most advanced.
      this.lastHealthPollMs = 0;
      const target = this.bestTarget(this.pgFailedAtMs + 2 * this.parts.config.postgres.probeIntervalMs);
      if (target !== null) {
        this.log.warn('postgres failed on the primary: handing leadership over', {
          event: 'step-down',
          term,
          to: target,
        });
        await this.driver.transferLeader(target);
        await this.waitFor(() => !this.isLeader(), this.electionMs() * 2);
        return;
      }
      if (
        // Only once fresh health reports had time to arrive and named no backup.
        now - this.pgFailedAtMs > RESTART_IN_PLACE_AFTER_MS &&
        !instance.isRunning() &&
        !instance.isStandby() &&
        (state.primary === this.self || state.primary === null)
      ) {
        this.log.warn('postgres down on the primary and no backup can take over: restarting it', { term });
        await supervisor.startOnce();
      }
      return;
    }
    if (promoted) {
      this.pg.syncStandbys.setEnabled(true);
      return;
    }
    await this.promote(term);
  }

  /** Step 4 of DESIGN.md: settle replay, record S, pg_promote(), slots, commit Promoted. */
  private async promote(term: number): Promise<void> {
    const { instance, syncStandbys } = this.pg;
    const control = this.control;
    const startedMs = this.clock();
    const others = this.databaseMembers()
      .filter((m) => m.name !== this.self)
      .map((m) => m.name);
    let s: bigint;
    if (instance.isStandby()) {
      this.log.info('leader of a new term: stopping replication to promote', {
        event: 'promote-prepare',
        term,
      });
      if (this.following !== null) {
        await stopFollowing(control);
        this.following = null;
      }
      const deadline = startedMs + this.settings.promoteCatchUpTimeoutMs;
      let replay = await replayState(control);
      while (replay.walReceiverRunning || (replay.replayLsn ?? 0n) < (replay.receiveLsn ?? 0n)) {
        if (this.clock() > deadline) {
          this.log.warn('replay did not catch up in time; promoting at what was replayed', { term });
          break;
        }
        if (!this.stillLeading(term)) return;
        await sleep(PROMOTE_POLL_MS);
        replay = await replayState(control);
      }
      if (!this.stillLeading(term)) return;
      s = replay.replayLsn ?? 0n;
      await promoteWithQuorum(control, others, this.parts.config.durability);
      syncStandbys.setEnabled(true);
      this.metrics.promotions.inc();
      this.log.info('promoted postgres', { event: 'promote', term, lsn: formatLsn(s) });
    } else {
      const rows = await control.query<{ lsn: string }>(`SELECT (pg_current_wal_lsn() - '0/0')::text AS lsn`);
      s = BigInt(rows[0]?.lsn ?? '0');
    }
    const slotsAtMs = this.clock();
    await ensureSlots(control, others);
    const commitAtMs = this.clock();
    await this.commit({ type: 'promoted', term, node: this.self, lsn: s });
    this.log.info('primary of term', {
      event: 'promoted',
      term,
      node: this.self,
      ms: Math.round(this.clock() - startedMs),
      slotsMs: Math.round(commitAtMs - slotsAtMs),
      commitMs: Math.round(this.clock() - commitAtMs),
    });
  }

  private async followerPass(): Promise<void> {
    const { instance, supervisor } = this.pg;
    const state = this.store.state;
    const pg = this.localPostgresState();
    supervisor.setAutoRestart(pg !== 'primary' && state.primary !== null && state.primary !== this.self);
    const action = followerAction({
      self: this.self,
      pg,
      currentTerm: this.currentTerm(),
      promotedTerm: state.promotedTerm,
      appliedPrimary: state.primary,
      following: this.following === undefined ? '?' : this.following,
      diverged: pg === 'stopped' && instance.hasData() && !instance.isStandby(),
      dataMissing: pg === 'stopped' && !instance.hasData(),
    });
    switch (action.kind) {
      case 'none':
        return;
      case 'stop-following':
        this.log.info('newer term seen: stop following the old primary', {
          event: 'fence',
          reason: 'stop-following',
          term: this.currentTerm(),
        });
        this.metrics.fences.inc({ reason: 'stop-following' });
        await stopFollowing(this.control);
        this.following = null;
        return;
      case 'follow': {
        const target = this.targetOf(action.primary);
        if (pg !== 'standby') return;
        this.log.info('following the primary', {
          event: 'follow',
          primary: action.primary,
          term: state.promotedTerm,
        });
        await followPrimary(this.control, instance, target);
        this.following = action.primary;
        return;
      }
      case 'demote': {
        if (pg === 'stopped' && (await this.rejoinAfterHandover(action.primary))) {
          this.following = action.primary;
          this.log.info('rejoined as a backup', {
            event: 'rejoin',
            how: 'restarted',
            primary: action.primary,
          });
          return;
        }
        const target = this.targetOf(action.primary);
        this.log.warn('postgres is a primary of an older term: demoting by pg_rewind', {
          event: 'fence',
          reason: 'demote',
          primary: action.primary,
          term: state.promotedTerm,
        });
        this.metrics.fences.inc({ reason: 'demote' });
        supervisor.setAutoRestart(false);
        this.pg.syncStandbys.setEnabled(false);
        let how = await rewindOnto(instance, target, this.log);
        try {
          await supervisor.startOnce();
        } catch (error) {
          // A rewound server that cannot find its timeline is rebuilt from a base backup.
          this.log.warn('rewound postgres did not start; taking a fresh base backup', {
            error: (error as Error).message,
          });
          await instance.stop('immediate');
          await rebuildFrom(instance, target);
          await supervisor.startOnce();
          how = 'cloned';
        }
        this.following = action.primary;
        this.log.info('rejoined as a backup', { event: 'rejoin', how, primary: action.primary });
        return;
      }
      case 'start-standby': {
        await supervisor.startOnce();
        this.following = action.primary;
        return;
      }
      case 'rebuild': {
        // Auto-restart off first: a supervisor retry must not start PostgreSQL on a half-copied dir.
        supervisor.setAutoRestart(false);
        this.pg.syncStandbys.setEnabled(false);
        this.log.warn('postgres has no data directory: cloning the primary', {
          event: 'rebuild',
          primary: action.primary,
        });
        await rebuildFrom(instance, this.targetOf(action.primary));
        await supervisor.startOnce();
        this.following = action.primary;
        this.log.info('rejoined as a backup', { event: 'rejoin', how: 'cloned', primary: action.primary });
        return;
      }
    }
  }

  private async fenceIfLeaseLost(): Promise<void> {
    const fence = shouldSelfFence({
      pgRunningAsPrimary: this.localPostgresState() === 'primary',
      // A leader of its promoted term gets its lease back with the next acknowledged
      // round (event-loop stalls void it briefly); fencing is for a primary that lost leadership.
      leaseValid: this.gate().open || this.leadsPromotedTerm(),
      leaseLastValidAtMs: this.leaseLastValidAtMs,
      nowMs: this.clock(),
      graceMs: this.settings.fenceGraceMs,
    });
    if (!fence) return;
    this.log.warn('lease lost past the grace period: stopping postgres', {
      event: 'fence',
      reason: 'self-fence',
      term: this.currentTerm(),
      graceMs: this.settings.fenceGraceMs,
    });
    this.metrics.fences.inc({ reason: 'self-fence' });
    this.selfFenced = true;
    this.pg.supervisor.setAutoRestart(false);
    this.leaseLastValidAtMs = null;
    await this.pg.instance.stop('immediate');
  }

  // ---------------------------------------------------------------- switchover

  private switchoverHost(): SwitchoverHost {
    const { instance, probe, supervisor } = this.pg;
    return {
      self: this.self,
      log: this.log,
      settings: this.settings,
      leaseMs: this.parts.config.raft.leaseMs,
      electionMs: this.electionMs(),
      stateDir: this.parts.config.node.dataDir,
      clock: this.clock,
      instance,
      probe,
      supervisor,
      control: this.control,
      state: () => this.store.state,
      stillLeading: (term) => this.stillLeading(term),
      commit: (command) => this.commit(command),
      transferLeader: (to) => this.driver.transferLeader(to),
      localHealth: () => this.health(),
      setHandingOver: (active) => {
        this.handingOver = active;
        this.kick();
      },
    };
  }

  /** The switchover target sets its quorum now, so its promotion skips that (a shorter pause). */
  private prepareForHandover(): void {
    if (this.isWitness || !this.pg.instance.isStandby()) return;
    const others = this.databaseMembers()
      .filter((m) => m.name !== this.self)
      .map((m) => m.name);
    setQuorum(this.control, others, this.parts.config.durability).catch((error: Error) =>
      this.log.warn('could not prepare the quorum before the switchover', { error: error.message }),
    );
  }

  /**
   * A former primary that a switchover shut down cleanly restarts as a backup of
   * the target with no rewind (switchover-policy.ts rejoinWithoutRewind); false
   * when that does not apply and the caller rewinds.
   */
  private async rejoinAfterHandover(primary: string): Promise<boolean> {
    const { instance, supervisor } = this.pg;
    const stateDir = this.parts.config.node.dataDir;
    const record = readHandoverRecord(stateDir);
    if (record === null || instance.isRunning()) return false;
    const control = await instance.controlData().catch(() => null);
    const state = this.store.state;
    const clean = rejoinWithoutRewind({
      record,
      control:
        control === null
          ? null
          : { cleanShutdown: control.state === 'shut down', checkpointLsn: control.checkpointLsn },
      appliedPrimary: state.primary,
      primaryChanges: state.primaryChanges,
      promotedAtLsn: state.promotedAtLsn,
    });
    if (!clean) {
      this.log.info('the hand-over record does not cover this promotion: rejoining by pg_rewind', {
        handedOverTo: record.to,
        checkpointLsn: formatLsn(record.checkpointLsn),
        primary: state.primary,
      });
      clearHandoverRecord(stateDir);
      return false;
    }
    supervisor.setAutoRestart(false);
    this.pg.syncStandbys.setEnabled(false);
    this.log.info('rejoining as a backup without rewind: postgres was shut down cleanly for the switchover', {
      event: 'rejoin-prepare',
      primary,
      checkpointLsn: formatLsn(record.checkpointLsn),
      promotedAtLsn: state.promotedAtLsn === null ? null : formatLsn(state.promotedAtLsn),
    });
    instance.configureAsStandby(this.targetOf(primary));
    try {
      await supervisor.startOnce();
    } catch (error) {
      this.log.warn('the cleanly stopped primary did not start as a backup; rewinding it', {
        error: (error as Error).message,
      });
      await instance.stop('immediate');
      clearHandoverRecord(stateDir);
      return false;
    }
    clearHandoverRecord(stateDir);
    return true;
  }

  // ---------------------------------------------------------------- health

  /** The leader collects the members' health over their API and commits changes. */
  private maybePollHealth(): void {
    const now = this.clock();
    if (!this.isLeader() || this.healthPolling || now - this.lastHealthPollMs < this.settings.healthPollMs)
      return;
    this.healthPolling = true;
    this.lastHealthPollMs = now;
    this.pollHealth()
      .catch((error: Error) => this.log.debug('health poll failed', { error: error.message }))
      .finally(() => {
        this.healthPolling = false;
      });
  }

  private async pollHealth(): Promise<void> {
    const others = this.databaseMembers().filter((m) => m.name !== this.self);
    const timeoutMs = Math.max(100, this.settings.healthPollMs * 2);
    await Promise.all(
      others.map(async (member) => {
        try {
          const response = await fetch(`http://${member.host}:${member.apiPort}/health`, {
            signal: AbortSignal.timeout(timeoutMs),
          });
          const health = (await response.json()) as LocalHealth;
          this.peers.set(member.name, { atMs: this.clock(), health });
        } catch {
          this.peers.delete(member.name);
        }
      }),
    );
    if (!this.isLeader()) return;
    const term = this.currentTerm();
    if (this.store.state.promotedTerm !== term || this.store.state.primary !== this.self) return;
    const own = this.health();
    await this.report(this.self, own.lsn, own.pgHealthy, false);
    for (const member of others) {
      const peer = this.peers.get(member.name)?.health;
      await this.report(member.name, peer?.lsn ?? null, peer?.pgHealthy ?? false, peer?.streaming ?? false);
    }
    // A witness has no PostgreSQL to probe: it is healthy while it answers this leader's Raft rounds.
    const progress = this.driverStatus()?.progress ?? {};
    for (const { spec } of this.store.state.members) {
      if (spec.kind !== 'witness') continue;
      await this.report(spec.name, null, progress[spec.name]?.recentActive === true, false);
    }
  }

  private async report(
    node: string,
    lsn: string | null,
    healthy: boolean,
    streaming: boolean,
  ): Promise<void> {
    const key = `${healthy}/${streaming}`;
    const last = this.reported.get(node);
    const now = this.clock();
    if (last !== undefined && last.key === key && now - last.atMs < HEALTH_REPORT_EVERY_MS) return;
    this.reported.set(node, { atMs: now, key });
    await this.commit({ type: 'health', node, lsn: lsn === null ? null : BigInt(lsn), healthy, streaming });
  }

  // ---------------------------------------------------------------- events

  private onApplied(outcome: import('./state-machine.ts').ApplyOutcome, term: number): void {
    if (outcome.kind === 'ignored') {
      this.log.warn('control command ignored', {
        command: outcome.command.type,
        reason: outcome.reason,
        term,
      });
    } else if (outcome.command.type === 'promoted') {
      const c = outcome.command;
      const kind = this.switchoverAnnounced ? 'switchover' : 'failover';
      this.switchoverAnnounced = false;
      this.log.info('promotion applied', {
        event: 'promotion',
        term: c.term,
        primary: c.node,
        lsn: formatLsn(c.lsn),
      });
      this.persistPrimary(c.node, c.term);
      this.maxVoteFitness = 0n;
      if (this.leaderLostAtMs !== null) {
        this.metrics.failovers.inc({ kind });
        this.metrics.failoverDuration.observe({ kind }, (this.clock() - this.leaderLostAtMs) / 1000);
        this.leaderLostAtMs = null;
      }
    } else if (outcome.command.type === 'switchover-abort') {
      this.switchoverAnnounced = false;
    } else if (outcome.command.type === 'switchover-intent') {
      this.switchoverAnnounced = true;
      this.log.info('switchover intent applied: holding new transactions', {
        event: 'switchover-intent',
        ...outcome.command,
      });
      if (outcome.command.to === this.self) this.prepareForHandover();
    }
    this.topology.refresh();
    this.kick();
  }

  private onRaftChange(change: RaftChange): void {
    if (change.term !== change.previous.term) {
      this.metrics.elections.inc();
      if (this.leaderLostAtMs === null && this.store.state.primary !== null)
        this.leaderLostAtMs = this.clock();
    }
    this.log.info('raft role changed', {
      event: 'election',
      role: change.role,
      term: change.term,
      leader: change.leader,
      previousRole: change.previous.role,
      previousTerm: change.previous.term,
    });
    this.kick();
  }

  private noteRole(): void {
    const role = this.health().role;
    if (role === this.lastRole) return;
    this.log.info('role changed', { event: 'role', role, previous: this.lastRole, term: this.currentTerm() });
    this.metrics.roleChanges.inc({ role });
    this.lastRole = role;
  }

  private noteDurability(): void {
    if (!this.gate().open) return;
    const decision = this.pg.syncStandbys.current();
    const mode = decision === null ? null : decision.blocked ? 'blocked' : decision.mode;
    if (mode === null || mode === this.lastDurability) return;
    // A backup that reconnects flips the mode quickly; report a settled mode, not every flap.
    const now = this.clock();
    if (now - this.lastDurabilityAtMs < DURABILITY_REPORT_MIN_MS) return;
    this.lastDurabilityAtMs = now;
    this.lastDurability = mode;
    const level = mode === 'quorum' ? 'info' : 'warn';
    this.log.log(level, 'durability mode', { event: 'durability', mode, term: this.currentTerm() });
    void this.commit({ type: 'durability', term: this.currentTerm(), mode }).catch(() => {});
  }

  // ---------------------------------------------------------------- helpers

  private stateFile(): string {
    return path.join(this.parts.config.node.dataDir, STATE_FILE);
  }

  private persistedPrimary(): string | null {
    const file = this.stateFile();
    if (!existsSync(file)) return null;
    const saved = JSON.parse(readFileSync(file, 'utf8')) as { primary?: string };
    return saved.primary ?? null;
  }

  private persistPrimary(primary: string, term: number): void {
    const file = this.stateFile();
    writeFileSync(`${file}.tmp`, `${JSON.stringify({ primary, term })}\n`);
    renameSync(`${file}.tmp`, file);
  }

  private knowledge(): LocalKnowledge {
    const status = this.driverStatus();
    const now = this.clock();
    const isLeader = status?.role === 'leader';
    const gate = this.gate();
    const heard = this.driver.lastLeaderContactMs();
    const leaderHeardRecently = !isLeader && status?.leader !== '' && this.driverLeaderContact(now);
    return {
      state: this.store.state,
      currentTerm: status?.term ?? 0,
      self: this.self,
      isLeader,
      leaseGateOpen: gate.open,
      leaderHeardRecently,
      viewValidUntilMs: gate.open
        ? gate.closesAtMs
        : leaderHeardRecently && heard !== null
          ? heard + this.parts.config.raft.leaseMs
          : now + this.settings.loopMs,
    };
  }

  private gate() {
    const status = this.driverStatus();
    const probe = this.parts.probe?.last() ?? null;
    return leaseGate({
      isLeader: status?.role === 'leader',
      currentTerm: status?.term ?? 0,
      promotedTerm: this.store.state.promotedTerm,
      appliedPrimary: this.store.state.primary,
      self: this.self,
      nowMs: this.clock(),
      // The driver's lease already ends the stop margin early.
      leaseEndMs: this.driver.leaseValidUntil(),
      stopMarginMs: 0,
      pgWritable: this.pgHealthy() && probe?.role === 'primary' && this.parts.instance?.isRunning() === true,
    });
  }

  /** Whether the leader was heard from within the lease (followers). */
  private driverLeaderContact(now: number): boolean {
    const heard = this.driver.lastLeaderContactMs();
    return heard !== null && now - heard < this.parts.config.raft.leaseMs;
  }

  private campaignAllowed(): boolean {
    const spec = this.memberSpec(this.self);
    if (spec === undefined || spec.kind === 'witness' || this.parts.probe === undefined) return false;
    const probe = this.parts.probe.last();
    const now = this.clock();
    const heard = this.driver.lastLeaderContactMs() ?? this.startedAtMs;
    return mayCampaign({
      self: this.self,
      kind: spec.kind,
      pgHealthy: this.pgHealthy(),
      pgInRecovery: probe?.role === 'backup',
      streamedRecently:
        this.lastStreamingAtMs !== null && now - this.lastStreamingAtMs <= this.settings.streamingGraceMs,
      appliedPrimary: this.store.state.primary,
      bootstrapPrimary: (this.parts.config.bootstrap?.primary ?? this.self) === this.self,
      leaderlessMs: now - Math.max(heard, this.lastLeaderContactMs),
      campaignFallbackMs: this.settings.campaignFallbackMs,
    });
  }

  /**
   * What this voter protects with the vote restriction: every commit it may hold
   * that was acknowledged. A backup: what it received. A primary: the furthest
   * flush a backup confirmed (the bound of acknowledged commits; its own unconfirmed
   * tail was never acknowledged). Sticky through a PostgreSQL crash, so the dead
   * primary's sidecar does not hand the election to a lagging backup; reset when a
   * new promotion starts a new history.
   */
  private voteFitness(): bigint {
    // A primary whose PostgreSQL died cannot know what it acknowledged last: it
    // votes for nobody (until a newer promotion replaces it: vetoesEveryVote), and
    // the backups decide among themselves by their LSNs.
    // One we stopped ourselves (self-fence) stopped taking writes a grace period
    // before: its last view of the backups' flush already bounds what it acknowledged.
    // A witness holds no data: it protects nothing and lets any up-to-date log win (Raft's own check).
    if (this.parts.instance === undefined || this.parts.probe === undefined) return 0n;
    const veto = vetoesEveryVote({
      self: this.self,
      pgIsStandby: this.parts.instance.isStandby(),
      pgHealthy: this.pgHealthy(),
      // A clean stop for a hand-over, like a self-fence, knows what it acknowledged.
      selfFenced: this.selfFenced || this.handingOver,
      appliedPrimary: this.store.state.primary,
    });
    if (veto) return MAX_LSN;
    const probe = this.parts.probe.last();
    let current: bigint | null = null;
    if (probe?.role === 'primary') {
      for (const row of probe.replication) {
        if (row.flushLsn !== null && (current === null || row.flushLsn > current)) current = row.flushLsn;
      }
    } else {
      current = fitnessOf(probe);
    }
    if (current !== null && current > this.maxVoteFitness) this.maxVoteFitness = current;
    return this.maxVoteFitness;
  }

  private pgHealthy(): boolean {
    return !this.pgCrashed && this.parts.probe?.healthy() === true;
  }

  /** standby.signal, not the last probe, tells a running server's role: a probe may predate a restart. */
  private localPostgresState(): LocalPostgresState {
    const { instance } = this.pg;
    if (!instance.isRunning()) return 'stopped';
    return instance.isStandby() ? 'standby' : 'primary';
  }

  private backupLagBytes(probe: ProbeResult | null): number | null {
    if (probe === null || probe.role !== 'backup') return null;
    const primary = this.store.state.members.find((m) => m.spec.name === this.store.state.primary);
    const mine = fitnessOf(probe);
    if (primary?.lsn === null || primary?.lsn === undefined || mine === null) return probe.lagBytes;
    return lagBytes(primary.lsn, probe.replayLsn ?? mine);
  }

  private durabilityMode(): 'quorum' | 'async' | 'blocked' | null {
    const decision = this.parts.syncStandbys?.current() ?? null;
    if (decision === null) return null;
    return decision.blocked ? 'blocked' : decision.mode;
  }

  /** The most advanced healthy backup by health read after `freshSinceMs` (default: recently). */
  private bestTarget(freshSinceMs?: number): string | null {
    const now = this.clock();
    const since = freshSinceMs ?? now - this.settings.healthPollMs * 5;
    const candidates: BackupCandidate[] = this.databaseMembers().map((m) => {
      const peer = this.peers.get(m.name);
      const fresh = peer !== undefined && peer.atMs >= since;
      return {
        name: m.name,
        kind: m.kind,
        healthy: fresh && peer.health.pgHealthy,
        streaming: fresh && peer.health.campaignable,
        lsn: fresh && peer.health.lsn !== null ? BigInt(peer.health.lsn) : null,
      };
    });
    return transferTarget(candidates, this.self);
  }

  private checkTarget(target: string | null | undefined): AdminResult | null {
    if (target === null || target === undefined) {
      return { ok: false, status: 409, message: 'no healthy streaming backup to hand over to' };
    }
    const spec = this.memberSpec(target);
    if (spec === undefined) return { ok: false, status: 404, message: `no member named ${target}` };
    if (spec.kind !== 'member' || target === this.self) {
      return { ok: false, status: 400, message: `${target} is not another database member` };
    }
    return null;
  }

  private async forwardToLeader(route: string, body: { to?: string }): Promise<AdminResult> {
    const leader = this.driverStatus()?.leader ?? '';
    const spec = leader === '' ? undefined : this.memberSpec(leader);
    if (spec === undefined)
      return { ok: false, status: 503, message: 'no leader right now; retry in a second' };
    try {
      const response = await fetch(`http://${spec.host}:${spec.apiPort}${route}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${this.parts.config.api.token ?? ''}`,
        },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(this.settings.switchoverTimeoutMs + 5000),
      });
      const answer = (await response.json()) as { message?: string; error?: string };
      if (response.ok)
        return { ok: true, message: answer.message ?? 'done', detail: answer as Record<string, unknown> };
      const status = [400, 404, 409, 503].includes(response.status) ? response.status : 503;
      return {
        ok: false,
        status: status as 400 | 404 | 409 | 503,
        message: answer.error ?? `leader answered ${response.status}`,
      };
    } catch (error) {
      return {
        ok: false,
        status: 503,
        message: `the leader ${leader} did not answer: ${(error as Error).message}`,
      };
    }
  }

  private async commit(command: ClusterCommand): Promise<void> {
    await this.driver.propose(encodeCommand(command));
  }

  private targetOf(name: string) {
    const spec = this.memberSpec(name);
    if (spec === undefined) throw new Error(`applied primary ${name} is not a member`);
    return followTargetOf(spec, this.self);
  }

  private memberSpec(name: string): MemberSpec | undefined {
    return this.store.state.members.find((m) => m.spec.name === name)?.spec;
  }

  /** The database members of the applied membership (what slots and the synchronous quorum cover). */
  databaseMemberNames(): string[] {
    return this.databaseMembers().map((m) => m.name);
  }

  private databaseMembers(): MemberSpec[] {
    return this.store.state.members.filter((m) => m.spec.kind === 'member').map((m) => m.spec);
  }

  private driverStatus() {
    try {
      return this.driver.status();
    } catch {
      return null;
    }
  }

  private isLeader(): boolean {
    return this.driverStatus()?.role === 'leader';
  }

  private leadsPromotedTerm(): boolean {
    const status = this.driverStatus();
    const state = this.store.state;
    return status?.role === 'leader' && state.primary === this.self && state.promotedTerm === status.term;
  }

  private stillLeading(term: number): boolean {
    const status = this.driverStatus();
    return this.running && status?.role === 'leader' && status.term === term;
  }

  private electionMs(): number {
    return this.parts.config.raft.electionTicks * this.parts.config.raft.tickMs;
  }

  private async waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = this.clock() + timeoutMs;
    while (this.clock() < deadline) {
      if (condition()) return true;
      await sleep(ADMIN_WAIT_POLL_MS);
    }
    return condition();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
