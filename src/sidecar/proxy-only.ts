// The proxy-only sidecar (`node.role: proxy`, `pgward start --role proxy`): a proxy
// next to an application, without a Raft vote or a PostgreSQL of its own. It routes
// by the view it follows from the members (API long-poll, plus Redis when set);
// fencing at the primary keeps it safe when that view is stale.
import { mountDashboard } from '../api/dashboard.ts';
import { ApiServer } from '../api/server.ts';
import type { Config } from '../config/schema.ts';
import { ExactlyOnceHooks } from '../exactly-once/proxy-hooks.ts';
import { deferred, type Service } from '../lifecycle.ts';
import { componentLogger, type Logger } from '../log.ts';
import { ProxyServer } from '../proxy/server.ts';
import type { FollowerTopology } from '../topology/follower.ts';
import { viewToJson } from '../topology/wire.ts';
import { followerTopology } from '../topology/wiring.ts';

export class ProxyOnlySidecar implements Service {
  readonly topology: FollowerTopology;
  readonly proxy: ProxyServer;
  readonly api: ApiServer;
  private readonly followers: Service[];
  private readonly ended = deferred<void>();
  private started: Service[] = [];
  readonly done = this.ended.promise;

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
  ) {
    const { topology, services } = followerTopology(config, logger);
    this.topology = topology;
    this.followers = services;
    // Keys are claimed in the same transaction as the work, on the primary, so the
    // exactly-once hooks need no PostgreSQL of their own; members install the ledger.
    const hooks = new ExactlyOnceHooks({
      config: config.exactlyOnce,
      topology,
      logger: componentLogger(logger, 'exactly-once'),
    });
    this.proxy = new ProxyServer({ config: config.proxy, topology, logger, hooks });
    this.api = new ApiServer({
      host: config.api.host,
      port: config.api.port,
      logger: componentLogger(logger, 'api'),
      cluster: () => {
        const view = this.topology.current();
        return {
          cluster: config.cluster.name,
          reportedBy: config.node.name,
          role: 'proxy',
          ...viewToJson(view),
          view: viewToJson(view),
        };
      },
      health: () => {
        const view = this.topology.current();
        return {
          healthy: view.primary !== null,
          body: { node: config.node.name, kind: 'proxy', term: view.term, primary: view.primary },
        };
      },
    });
    mountDashboard(this.api.router, logger, config.api.token);
  }

  async start(): Promise<void> {
    for (const service of [this.api, ...this.followers, this.proxy]) {
      await service.start();
      this.started.push(service);
    }
    this.logger.info('proxy-only sidecar running', {
      api: this.api.url(),
      members: this.config.members.length,
    });
  }

  async stop(): Promise<void> {
    for (const service of [...this.started].reverse()) {
      await service
        .stop()
        .catch((error: Error) => this.logger.error('stop failed', { error: error.message }));
    }
    this.started = [];
    this.ended.resolve();
  }
}
