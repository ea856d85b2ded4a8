// The sidecar process behind `pgward start`: composes the PostgreSQL supervisor,
// the health probe, synchronous-standby management, the topology the proxy reads,
// and the admin API. In this issue the primary is fixed by bootstrap.primary.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { mountDashboard } from '../api/dashboard.ts';
import { failpointRouter } from '../api/routes/failpoints.ts';
import { clusterApiRouter } from '../api/routes/index.ts';
import { ApiServer } from '../api/server.ts';
import type { ClusterStatus, NodeStatus } from '../api/status.ts';
import { FailoverController } from '../cluster/controller.ts';
import type { ClusterView, MemberView, NodeRole } from '../cluster/view.ts';
import { StaticTopology, type TopologySource } from '../cluster/view.ts';
import { postgresDataDir } from '../config/load.ts';
import type { Config, MemberConfig } from '../config/schema.ts';
import { UserError } from '../errors.ts';
import { FailpointControl, testFailpointsEnabled } from '../exactly-once/failpoints.ts';
import { ExactlyOnceSidecarPart } from '../exactly-once/sidecar-part.ts';
import { deferred, type Service } from '../lifecycle.ts';
import { componentLogger, type Logger } from '../log.ts';
import { findBinaries } from '../postgres/binaries.ts';
import { type FollowTarget, PostgresInstance, slotNameFor } from '../postgres/instance.ts';
import { formatLsn, lagBytes } from '../postgres/lsn.ts';
import { PostgresProbe, type ProbeResult } from '../postgres/probe.ts';
import { accessProblem, ensureOwnedDir, postgresRunAs } from '../postgres/run-as.ts';
import { ProxyServer } from '../proxy/server.ts';
import { topologyPublisher } from '../topology/wiring.ts';
import { PostgresSupervisor } from './postgres-supervisor.ts';
import { SyncStandbyManager } from './sync-manager.ts';

export interface SidecarOptions {
  config: Config;
  logger: Logger;
  /** Named in config error messages. */
  configFile?: string;
}

/** The foundation's fencing epoch: fixed until failover (issue 6) drives terms. */
const STATIC_TERM = 1;
/** Lag figures in the topology are refreshed at most this often (health changes go out at once). */
const TOPOLOGY_LAG_PUBLISH_MS = 1000;

export class Sidecar implements Service {
  readonly config: Config;
  readonly logger: Logger;
  readonly instance: PostgresInstance;
  readonly supervisor: PostgresSupervisor;
  readonly probe: PostgresProbe;
  readonly syncStandbys: SyncStandbyManager;
  readonly topology: StaticTopology;
  readonly api: ApiServer;
  /** Exactly-once: proxy hooks, ledger installer and GC (src/exactly-once/). */
  readonly exactlyOnce: ExactlyOnceSidecarPart;
  /** The client-facing proxy (null when proxy.enabled is false). */
  readonly proxy: ProxyServer | null;
  /** Extra services started after the built-in ones and stopped before them (proxy, Raft, ...). */
  readonly extensions: Service[] = [];
  /** Raft-led failover when this node is in `members`; its `topology` is what the proxy routes by. */
  readonly failover: FailoverController | null = null;
  private readonly ended = deferred<void>();
  private readonly configFile: string | undefined;
  private started: Service[] = [];
  private stopping: Promise<void> | null = null;
  private lastTopologyPublishMs = 0;

  constructor(options: SidecarOptions) {
    const config = options.config;
    this.config = config;
    this.configFile = options.configFile;
    this.logger = options.logger;
    if (config.node.role !== 'member') {
      throw new UserError(
        `node.role '${config.node.role}' is not supported by this version of the sidecar`,
        config.node.role === 'witness'
          ? 'run it with pgward start (it starts the witness sidecar for node.role witness)'
          : 'set node.role to member',
      );
    }
    const bootstrapPrimary = config.bootstrap?.primary ?? config.node.name;
    if (bootstrapPrimary !== config.node.name && this.member(bootstrapPrimary) === undefined) {
      throw new UserError(
        `config error: bootstrap.primary: '${bootstrapPrimary}' is not in members (${this.where()})`,
        `add it to members or name one of ${config.members.map((m) => m.name).join(', ') || 'the members'}`,
      );
    }
    const runAs = postgresRunAs();
    const dataDir = postgresDataDir(config);
    for (const [option, dir] of [
      ['node.dataDir', config.node.dataDir],
      ['postgres.dataDir', dataDir],
    ] as const) {
      const problem = accessProblem(runAs, dir);
      if (problem !== null) {
        throw new UserError(
          `config error: ${option}: ${problem}, so PostgreSQL cannot use ${dir} (${this.where()})`,
          runAs === null
            ? `choose a directory you can write, or fix its permissions`
            : `make the parents of ${dir} traversable (chmod o+x) or choose another directory, e.g. under /var/lib/pgward`,
        );
      }
    }
    ensureOwnedDir(runAs, config.node.dataDir, 0o755);
    mkdirSync(path.dirname(dataDir), { recursive: true });

    const pgLogger = componentLogger(this.logger, 'postgres');
    this.instance = new PostgresInstance({
      binaries: findBinaries(config.postgres.bindir),
      runAs,
      dataDir,
      host: config.postgres.host,
      port: this.pgPort(),
      superuser: config.postgres.superuser,
      replicationUser: config.postgres.replicationUser,
      password: config.postgres.password,
      trustNetworks: config.postgres.trustNetworks,
      clusterName: config.cluster.name,
      nodeName: config.node.name,
      parameters: config.postgres.parameters,
      logFile: path.join(config.node.dataDir, 'postgres.log'),
      logger: pgLogger,
    });
    this.instance.checkOwnership();
    this.supervisor = new PostgresSupervisor({
      instance: this.instance,
      logger: componentLogger(this.logger, 'supervisor'),
      stateDir: config.node.dataDir,
      bootstrapPrimary: bootstrapPrimary === config.node.name,
      followTarget: () => {
        const target = this.failover?.followTarget();
        return target === undefined ? this.configuredFollowTarget() : target;
      },
      slotsToKeep: () => this.otherMembers().map((m) => slotNameFor(m.name)),
      startTimeoutMs: config.postgres.startTimeoutMs,
      stopTimeoutMs: config.postgres.stopTimeoutMs,
      restartDelayMs: config.postgres.restartDelayMs,
    });
    this.probe = new PostgresProbe({
      clientConfig: this.instance.clientConfig(),
      intervalMs: config.postgres.probeIntervalMs,
      failures: config.postgres.probeFailures,
      timeoutMs: config.postgres.probeTimeoutMs,
      logger: componentLogger(this.logger, 'probe'),
    });
    this.syncStandbys = new SyncStandbyManager({
      instance: this.instance,
      logger: componentLogger(this.logger, 'sync'),
      durability: config.durability,
      backups: () => this.otherMembers().map((m) => m.name),
      mayChange: () => this.failover?.health().writable ?? true,
    });
    this.probe.on('result', (result) => {
      this.syncStandbys.onProbe(result);
      this.exactlyOnce.onProbe(result.role);
      this.refreshTopology(false);
    });
    this.probe.on('up', () => this.refreshTopology(true));
    this.probe.on('down', () => this.refreshTopology(true));
    this.topology = new StaticTopology(this.initialView(bootstrapPrimary));
    if (this.self() !== undefined) {
      this.failover = new FailoverController({
        config,
        logger: componentLogger(this.logger, 'failover'),
        instance: this.instance,
        probe: this.probe,
        supervisor: this.supervisor,
        syncStandbys: this.syncStandbys,
        baseStatus: () => this.status(),
        proxyStats: () => this.proxy?.stats() ?? null,
        proxyWritesInFlight: () => this.proxy?.writesInFlight() ?? null,
      });
      // Started before the proxy, so it routes by the Raft view from its first client on.
      this.extensions.push(this.failover);
    }
    /** What the proxy routes by: the Raft view when failover runs, else the static bootstrap view. */
    const routing: TopologySource = this.failover?.topology ?? this.topology;
    this.exactlyOnce = new ExactlyOnceSidecarPart({
      config: config.exactlyOnce,
      topology: routing,
      clientConfig: () => this.instance.clientConfig(),
      logger: this.logger,
    });
    this.extensions.push(this.exactlyOnce);
    this.proxy = config.proxy.enabled
      ? new ProxyServer({
          config: config.proxy,
          topology: routing,
          logger: this.logger,
          hooks: this.exactlyOnce.hooks,
        })
      : null;
    if (this.proxy !== null) this.extensions.push(this.proxy);
    this.api = new ApiServer({
      host: config.api.host,
      port: this.self()?.apiPort ?? config.api.port,
      logger: componentLogger(this.logger, 'api'),
      cluster: () => this.status(),
      health: () => this.health(),
    });
    if (this.failover !== null) {
      this.api.router.use(
        clusterApiRouter({
          reader: this.failover,
          admin: this.failover,
          token: config.api.token,
          registry: this.failover.metrics.registry,
        }),
      );
    }
    if (testFailpointsEnabled(process.env)) {
      // Test-only (PGWARD_TEST_FAILPOINTS=1): lets a fault-injection test pause this proxy's commits.
      this.logger.warn('exactly-once test failpoints are enabled: never run a production sidecar like this');
      this.api.router.use(failpointRouter(new FailpointControl(), config.api.token));
    }
    // The dashboard's timeline is fed by this sidecar's event log lines.
    mountDashboard(this.api.router, this.logger, config.api.token);
    const publisher = topologyPublisher(config, routing, this.logger);
    if (publisher !== null) this.extensions.push(publisher);
  }

  get done(): Promise<void> {
    return this.ended.promise;
  }

  async start(): Promise<void> {
    for (const service of [this.api, this.supervisor, this.probe, ...this.extensions]) {
      await service.start();
      this.started.push(service);
    }
    this.logger.info('sidecar running', { api: this.api.url(), postgresPort: this.instance.options.port });
  }

  /** Stops extensions (proxy first), probe, PostgreSQL (fast), then the API. Idempotent. */
  stop(): Promise<void> {
    if (this.stopping === null) {
      this.stopping = (async () => {
        const order = [...this.started].reverse().filter((s) => s !== this.api);
        for (const service of order) {
          await service
            .stop()
            .catch((error: Error) => this.logger.error('stop failed', { error: error.message }));
        }
        if (!this.started.includes(this.supervisor))
          await this.instance.stop('fast', this.config.postgres.stopTimeoutMs);
        await this.api.stop();
        this.started = [];
        this.ended.resolve();
      })();
    }
    return this.stopping;
  }

  /** This node's view of the cluster (GET /cluster). */
  status(): ClusterStatus & Record<string, unknown> {
    const view = this.topology.current();
    const probe = this.probe.last();
    const healthy = this.probe.healthy();
    const nodes = this.config.members.length > 0 ? this.config.members : [];
    const statuses: NodeStatus[] = nodes.map((m) =>
      m.name === this.config.node.name ? this.selfStatus(probe, healthy) : this.peerStatus(m, probe),
    );
    if (!nodes.some((m) => m.name === this.config.node.name))
      statuses.unshift(this.selfStatus(probe, healthy));
    return {
      cluster: this.config.cluster.name,
      term: view.term,
      primary: view.primary,
      reportedBy: this.config.node.name,
      nodes: statuses,
      promotedAtLsn: view.promotedAtLsn === null ? null : view.promotedAtLsn.toString(),
      members: view.members.map((m) => ({ ...m, lsn: m.lsn === null ? null : m.lsn.toString() })),
    };
  }

  health(): { healthy: boolean; body: Record<string, unknown> } {
    const probe = this.probe.last();
    const healthy = this.probe.healthy();
    return {
      healthy,
      body: {
        node: this.config.node.name,
        role: healthy ? (probe?.role ?? 'unknown') : 'down',
        pgHealthy: healthy,
        postmasterPid: this.instance.postmasterPid(),
        sync: this.syncStandbys.current(),
      },
    };
  }

  private selfStatus(probe: ProbeResult | null, healthy: boolean): NodeStatus {
    const role: NodeRole = !healthy ? (probe === null ? 'unknown' : 'down') : (probe?.role ?? 'unknown');
    const primary = probe?.role === 'primary';
    const sync = this.syncStandbys.current();
    const lsnText = (lsn: bigint | null | undefined) =>
      lsn === null || lsn === undefined ? null : formatLsn(lsn);
    return {
      name: this.config.node.name,
      role,
      sidecar: { pid: process.pid, api: this.safeApiUrl() },
      proxy: this.proxyEndpoint(this.self()),
      postgres: {
        host: this.config.postgres.host,
        port: this.instance.options.port,
        pid: this.instance.postmasterPid(),
        dataDir: this.instance.dataDir,
        receiveLsn: lsnText(primary ? probe?.flushLsn : probe?.receiveLsn),
        replayLsn: lsnText(primary ? probe?.flushLsn : probe?.replayLsn),
        currentLsn: primary ? lsnText(probe?.currentLsn) : null,
        lagBytes: probe === null ? null : probe.lagBytes,
        sync: primary ? (sync?.mode ?? null) : null,
        healthy,
      },
    };
  }

  /** What this node knows of a peer: from pg_stat_replication when it is the primary. */
  private peerStatus(member: MemberConfig, probe: ProbeResult | null): NodeStatus {
    const row =
      probe?.role === 'primary'
        ? probe.replication.find((r) => r.applicationName === member.name)
        : undefined;
    const current = probe?.currentLsn ?? null;
    return {
      name: member.name,
      role: member.kind === 'witness' ? 'witness' : row ? 'backup' : 'unknown',
      sidecar: { pid: null, api: `http://${member.host}:${member.apiPort}` },
      // A witness has neither PostgreSQL nor (usually) a proxy: port 0 says so.
      proxy:
        member.kind === 'witness'
          ? { host: member.host, port: member.proxyPort ?? 0, readOnlyPort: member.readOnlyPort ?? 0 }
          : this.proxyEndpoint(member),
      postgres: {
        host: member.host,
        port: member.kind === 'witness' ? 0 : (member.pgPort ?? 5432),
        pid: null,
        dataDir: null,
        receiveLsn: row?.flushLsn === null || row === undefined ? null : formatLsn(row.flushLsn),
        replayLsn: row?.replayLsn === null || row === undefined ? null : formatLsn(row.replayLsn),
        lagBytes: row?.replayLsn != null && current !== null ? lagBytes(current, row.replayLsn) : null,
        sync: row ? (row.syncState === 'quorum' || row.syncState === 'sync' ? 'quorum' : 'async') : null,
      },
    };
  }

  private proxyEndpoint(member: MemberConfig | undefined): NodeStatus['proxy'] {
    const own = member?.name === this.config.node.name;
    return {
      host: own ? this.config.proxy.host : (member?.host ?? this.config.proxy.host),
      port: member?.proxyPort ?? this.config.proxy.port,
      readOnlyPort: member?.readOnlyPort ?? this.config.proxy.readOnlyPort,
    };
  }

  private safeApiUrl(): string | null {
    try {
      return this.api.url();
    } catch {
      return null;
    }
  }

  private where(): string {
    return this.configFile === undefined ? 'in the configuration' : `in ${this.configFile}`;
  }

  private member(name: string): MemberConfig | undefined {
    return this.config.members.find((m) => m.name === name);
  }

  private self(): MemberConfig | undefined {
    return this.member(this.config.node.name);
  }

  /**
   * The other database members: the applied Raft membership once failover runs (so
   * `pgward member add|remove` moves slots and the synchronous quorum), else the config.
   */
  private otherMembers(): Array<Pick<MemberConfig, 'name'>> {
    const applied = this.failover?.databaseMemberNames();
    if (applied !== undefined)
      return applied.filter((name) => name !== this.config.node.name).map((name) => ({ name }));
    return this.config.members.filter((m) => m.name !== this.config.node.name && m.kind === 'member');
  }

  /** The PostgreSQL port: the member entry's pgPort wins over postgres.port. */
  private pgPort(): number {
    return this.self()?.pgPort ?? this.config.postgres.port;
  }

  /**
   * Without a failover decision: on the first start bootstrap.primary decides; later
   * starts keep the role the data dir had (a primary stays one, a backup follows the
   * primary it last followed), so a restart never points a node at a stale primary.
   */
  private configuredFollowTarget(): FollowTarget | null {
    if (this.instance.hasData()) {
      if (!this.instance.isStandby()) return null;
      const last = this.instance.lastFollowTarget();
      if (last !== null) return last;
    }
    const primary = this.config.bootstrap?.primary ?? this.config.node.name;
    if (primary === this.config.node.name) return null;
    const member = this.member(primary);
    if (member?.pgPort === undefined) {
      throw new UserError(
        `config error: members: '${primary}' has no pgPort (${this.where()})`,
        `add pgPort to the members entry of ${primary}`,
      );
    }
    return { host: member.host, port: member.pgPort, slotName: slotNameFor(this.config.node.name) };
  }

  private initialView(primary: string): ClusterView {
    const members: MemberView[] = (this.config.members.length > 0 ? this.config.members : []).map((m) => ({
      name: m.name,
      role: m.kind === 'witness' ? 'witness' : m.name === primary ? 'primary' : 'backup',
      postgres: m.pgPort === undefined ? null : { host: m.host, port: m.pgPort },
      lsn: null,
      lagBytes: null,
      healthy: true,
    }));
    return { term: STATIC_TERM, primary, promotedAtLsn: null, members };
  }

  /**
   * Publishes this node's health, and the lag it knows (its own as a backup, its
   * backups' as the primary), to the topology the proxy routes by. Health changes go
   * out at once; lag at most once per TOPOLOGY_LAG_PUBLISH_MS.
   */
  private refreshTopology(immediately: boolean): void {
    const nowMs = Date.now();
    if (!immediately && nowMs - this.lastTopologyPublishMs < TOPOLOGY_LAG_PUBLISH_MS) return;
    this.lastTopologyPublishMs = nowMs;
    const view = this.topology.current();
    const healthy = this.probe.healthy();
    const probe = this.probe.last();
    const self = this.config.node.name;
    const members = view.members.map((m): MemberView => {
      if (m.name === self) {
        const lsn = probe === null ? null : (probe.replayLsn ?? probe.currentLsn);
        return { ...m, healthy, lsn, lagBytes: healthy && probe !== null ? probe.lagBytes : null };
      }
      const row =
        probe?.role === 'primary' ? probe.replication.find((r) => r.applicationName === m.name) : undefined;
      if (row === undefined || row.replayLsn === null || probe?.currentLsn == null) return m;
      return { ...m, lsn: row.replayLsn, lagBytes: lagBytes(probe.currentLsn, row.replayLsn) };
    });
    const changed = members.some((m, i) => {
      const old = view.members[i]!;
      return old.healthy !== m.healthy || old.lagBytes !== m.lagBytes || old.lsn !== m.lsn;
    });
    if (changed) this.topology.set({ ...view, members });
  }
}
