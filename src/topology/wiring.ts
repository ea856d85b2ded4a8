// How a sidecar uses the topology channel, from its config: members publish on
// Redis when `redis.url` is set; proxy-only sidecars follow Redis (when set) and
// always long-poll the members' API.
import type { ClusterView, TopologySource } from '../cluster/view.ts';
import type { Config } from '../config/schema.ts';
import type { Service } from '../lifecycle.ts';
import { componentLogger, type Logger } from '../log.ts';
import { ApiPollTopology } from './api-poll.ts';
import { FollowerTopology } from './follower.ts';
import { RedisTopologyPublisher, RedisTopologySubscriber } from './redis.ts';

/** For members: the Redis publisher of their view, or null without `redis.url`. */
export function topologyPublisher(config: Config, topology: TopologySource, logger: Logger): Service | null {
  if (config.redis.url === undefined) return null;
  return new RedisTopologyPublisher(
    topology,
    {
      url: config.redis.url,
      channel: config.redis.channel,
      cluster: config.cluster.name,
      node: config.node.name,
    },
    componentLogger(logger, 'redis-topology'),
  );
}

/** For proxy-only sidecars: the topology to route by and the services that keep it current. */
export function followerTopology(
  config: Config,
  logger: Logger,
): { topology: FollowerTopology; services: Service[] } {
  const log = componentLogger(logger, 'topology');
  const initial: ClusterView = {
    term: 0,
    primary: null,
    promotedAtLsn: null,
    members: config.members
      .filter((m) => m.kind === 'member')
      .map((m) => ({
        name: m.name,
        role: 'unknown',
        postgres: m.pgPort === undefined ? null : { host: m.host, port: m.pgPort },
        lsn: null,
        lagBytes: null,
        healthy: false,
      })),
  };
  const topology = new FollowerTopology(initial, log);
  const memberUrls = config.members.map((m) => `http://${m.host}:${m.apiPort}`);
  const services: Service[] = [new ApiPollTopology(topology, { memberUrls }, log)];
  if (config.redis.url !== undefined) {
    services.push(
      new RedisTopologySubscriber(
        topology,
        {
          url: config.redis.url,
          channel: config.redis.channel,
          cluster: config.cluster.name,
          node: config.node.name,
        },
        log,
      ),
    );
  }
  return { topology, services };
}
