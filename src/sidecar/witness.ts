// The witness sidecar (`node.role: witness`): a Raft voter without PostgreSQL. It
// votes (so two databases + one witness make a 3-vote quorum) but never campaigns
// and is never a promotion target; it serves the admin API (GET /health is 200 while
// it answers, GET /cluster its view) and, when proxy.enabled, a proxy that routes to
// the primary by the same Raft view a member's proxy uses.
import { mkdirSync } from 'node:fs';
import { mountDashboard } from '../api/dashboard.ts';
import { clusterApiRouter } from '../api/routes/index.ts';
import { ApiServer } from '../api/server.ts';
import type { NodeStatus } from '../api/status.ts';
import { FailoverController } from '../cluster/controller.ts';
import type { Config, MemberConfig } from '../config/schema.ts';
import { UserError } from '../errors.ts';
import { ExactlyOnceHooks } from '../exactly-once/proxy-hooks.ts';
import { deferred, type Service } from '../lifecycle.ts';
import { componentLogger, type Logger } from '../log.ts';
import { ProxyServer } from '../proxy/server.ts';
import { topologyPublisher } from '../topology/wiring.ts';

export interface WitnessOptions {
  config: Config;
  logger: Logger;
  configFile?: string;
}

export class WitnessSidecar implements Service {
  readonly failover: FailoverController;
  readonly api: ApiServer;
  readonly proxy: ProxyServer | null;
  private readonly services: Service[] = [];
  private readonly ended = deferred<void>();
  private started: Service[] = [];
  private stopping: Promise<void> | null = null;
  readonly done = this.ended.promise;

  constructor(private readonly options: WitnessOptions) {
    const { config, logger } = options;
    const where = options.configFile === undefined ? 'in the configuration' : `in ${options.configFile}`;
    const self = config.members.find((m) => m.name === config.node.name);
    if (self === undefined || self.kind !== 'witness') {
      throw new UserError(
        `config error: node.role is witness but members has no witness entry named '${config.node.name}' (${where})`,
        `add { name: ${config.node.name}, kind: witness, host, raftPort, apiPort } to members on every node`,
      );
    }
    if (!config.members.some((m) => m.kind === 'member')) {
      throw new UserError(
        `config error: members lists no database member (${where})`,
        'a witness only votes: list the PostgreSQL members too',
      );
    }
    // Raft keeps its log here; a witness keeps nothing else.
    mkdirSync(config.node.dataDir, { recursive: true });
    this.failover = new FailoverController({
      config,
      logger: componentLogger(logger, 'failover'),
      baseStatus: () => this.baseStatus(),
      proxyStats: () => this.proxy?.stats() ?? null,
    });
    this.services.push(this.failover);
    this.proxy = config.proxy.enabled
      ? new ProxyServer({
          config: config.proxy,
          topology: this.failover.topology,
          logger,
          // The ledger lives on the primary; the hooks claim keys there, like a proxy-only sidecar's.
          hooks: new ExactlyOnceHooks({
            config: config.exactlyOnce,
            topology: this.failover.topology,
            logger: componentLogger(logger, 'exactly-once'),
          }),
        })
      : null;
    if (this.proxy !== null) this.services.push(this.proxy);
    this.api = new ApiServer({
      host: config.api.host,
      port: self.apiPort,
      logger: componentLogger(logger, 'api'),
      cluster: () => this.failover.status(),
      health: () => ({ healthy: true, body: this.failover.health() }),
    });
    this.api.router.use(
      clusterApiRouter({
        reader: this.failover,
        admin: this.failover,
        token: config.api.token,
        registry: this.failover.metrics.registry,
      }),
    );
    mountDashboard(this.api.router, logger, config.api.token);
    const publisher = topologyPublisher(config, this.failover.topology, logger);
    if (publisher !== null) this.services.push(publisher);
  }

  async start(): Promise<void> {
    for (const service of [this.api, ...this.services]) {
      await service.start();
      this.started.push(service);
    }
    this.options.logger.info('witness sidecar running', {
      api: this.api.url(),
      proxy: this.proxy !== null,
    });
  }

  stop(): Promise<void> {
    if (this.stopping === null) {
      this.stopping = (async () => {
        for (const service of [...this.started].reverse()) {
          await service
            .stop()
            .catch((error: Error) => this.options.logger.error('stop failed', { error: error.message }));
        }
        this.started = [];
        this.ended.resolve();
      })();
    }
    return this.stopping;
  }

  /** The foundation's status shape: every member, this witness with role 'witness' and no PostgreSQL. */
  private baseStatus(): Record<string, unknown> {
    const { config } = this.options;
    const nodes: NodeStatus[] = config.members.map((m) => this.nodeStatus(m));
    return { cluster: config.cluster.name, reportedBy: config.node.name, nodes };
  }

  private nodeStatus(member: MemberConfig): NodeStatus {
    const { config } = this.options;
    const own = member.name === config.node.name;
    return {
      name: member.name,
      role: member.kind === 'witness' ? 'witness' : 'unknown',
      sidecar: {
        pid: own ? process.pid : null,
        api: own ? safeUrl(this.api) : `http://${member.host}:${member.apiPort}`,
      },
      // A witness lists a proxy only when its own runs; members' come from their entries.
      proxy:
        member.kind === 'witness' && !(own && config.proxy.enabled)
          ? { host: member.host, port: 0, readOnlyPort: 0 }
          : {
              host: member.host,
              port: member.proxyPort ?? config.proxy.port,
              readOnlyPort: member.readOnlyPort ?? config.proxy.readOnlyPort,
            },
      postgres: {
        host: member.host,
        port: member.pgPort ?? 0,
        pid: null,
        dataDir: null,
        receiveLsn: null,
        replayLsn: null,
        lagBytes: null,
        sync: null,
      },
    };
  }
}

function safeUrl(api: ApiServer): string | null {
  try {
    return api.url();
  } catch {
    return null;
  }
}
