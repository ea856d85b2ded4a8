// Builds the Raft driver's options from the sidecar configuration, so that the
// sidecar and `pgward up` wire Raft the same way.
import path from 'node:path';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { RaftDriverOptions, RaftStateMachine } from './driver.ts';
import type { PeerAddress } from './transport/tcp.ts';

export interface RaftWiring {
  logger: Logger;
  stateMachine: RaftStateMachine;
  voteCheck?: RaftDriverOptions['voteCheck'];
}

export function raftDriverOptions(config: Config, wiring: RaftWiring): RaftDriverOptions {
  const self = config.node.name;
  if (!config.members.some((m) => m.name === self)) {
    throw new Error(
      `node ${self} is not in members: add it there (with its raftPort) to give it a Raft vote`,
    );
  }
  if (config.cluster.secret === undefined) {
    throw new Error(
      'cluster.secret is required to authenticate Raft traffic: set it (16+ characters) on every member',
    );
  }
  const { raft } = config;
  const peers = new Map<string, PeerAddress>(
    config.members.filter((m) => m.name !== self).map((m) => [m.name, { host: m.host, port: m.raftPort }]),
  );
  return {
    id: self,
    timing: {
      tickMs: raft.tickMs,
      heartbeatTicks: raft.heartbeatTicks,
      electionTicks: raft.electionTicks,
      maxClockDrift: raft.maxClockDrift,
      leaseMs: raft.leaseMs,
      leaseStopMarginMs: raft.leaseStopMarginMs,
    },
    dataDir: raft.dataDir ?? path.join(config.node.dataDir, 'raft'),
    bootstrap: {
      voters: config.members.filter((m) => m.kind === 'member').map((m) => m.name),
      witnesses: config.members.filter((m) => m.kind === 'witness').map((m) => m.name),
      learners: [],
    },
    listen: { host: raft.host, port: raft.port },
    peers,
    clusterId: config.cluster.name,
    secret: config.cluster.secret,
    logger: wiring.logger,
    stateMachine: wiring.stateMachine,
    snapshotEveryEntries: raft.snapshotEveryEntries,
    ...(wiring.voteCheck !== undefined ? { voteCheck: wiring.voteCheck } : {}),
  };
}
