// The Raft driver: the only async part of Raft. It owns time (a tick timer on
// the monotonic clock), the disk (FileStorage) and the network (TcpTransport),
// and runs the Ready loop in the order the core's contract demands:
//   persist (one fsync) -> send -> restore/apply -> advance.
// Inputs (messages, ticks, proposals) that arrive while a Ready is being
// persisted wait in a bounded inbox and are stepped together afterwards, which
// batches many of them into the next fsync.
import { randomInt } from 'node:crypto';
import { deferred, type Service } from '../lifecycle.ts';
import type { Logger } from '../log.ts';
import { CodecError, decodeMessage, encodeMessage } from './codec.ts';
import { encodeConfChange } from './core/confchange.ts';
import { RaftNode } from './core/raft-node.ts';
import { SeededRng } from './core/rng.ts';
import type {
  ConfChange,
  Config,
  ConfState,
  Entry,
  NodeId,
  ProposeResult,
  Ready,
  Role,
  Snapshot,
  Status,
} from './core/types.ts';
import { FileStorage } from './storage/file-storage.ts';
import { type PeerAddress, TcpTransport, type TransportCounters } from './transport/tcp.ts';

/** The application's replicated state, fed by the driver in log order. */
export interface RaftStateMachine {
  /** Committed entries in index order, no-ops and conf changes included; called once per entry. */
  apply(entries: readonly Entry[]): void | Promise<void>;
  /** Replaces the whole state with a snapshot received from the leader or found at boot. */
  restore(snapshot: Snapshot): void | Promise<void>;
  /** The state as of the last applied entry, for a local snapshot. */
  snapshot(): Uint8Array;
}

export interface RaftTiming {
  tickMs: number;
  heartbeatTicks: number;
  electionTicks: number;
  maxClockDrift: number;
  leaseMs: number;
  leaseStopMarginMs: number;
}

export interface RaftDriverOptions {
  id: NodeId;
  timing: RaftTiming;
  /** Raft WAL and snapshot directory. */
  dataDir: string;
  /** Membership for a brand-new group (ignored once a snapshot exists). */
  bootstrap: ConfState;
  listen: PeerAddress;
  /** Every other member's Raft address. */
  peers: ReadonlyMap<NodeId, PeerAddress>;
  clusterId: string;
  secret: string;
  logger: Logger;
  stateMachine: RaftStateMachine;
  /** Vote restriction (defaults to the core's: candidate fitness >= own). */
  voteCheck?: Config['voteCheck'];
  /** Take a local snapshot once this many entries were applied since the last one. */
  snapshotEveryEntries?: number;
  maxProposalBytes?: number;
  maxPendingProposals?: number;
  /** Peer messages waiting while a Ready is persisted; more are dropped (Raft retransmits). */
  maxInboxMessages?: number;
  /** Local monotonic milliseconds; performance.now() in production. */
  clock?: () => number;
  /** Seed of the election-timeout RNG; drawn from crypto when absent. */
  seed?: number;
  /** Uniform [0, 1) for reconnect jitter; Math.random is fine outside the pure core. */
  random?: () => number;
}

/** The outcome of a proposal is not known: it may or may not commit later. */
export class ProposalOutcomeUnknownError extends Error {
  override name = 'ProposalOutcomeUnknownError';
}

/** The proposal definitely did not and will not commit. */
export class ProposalRejectedError extends Error {
  override name = 'ProposalRejectedError';
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export interface RaftChange {
  role: Role;
  term: number;
  leader: NodeId;
  previous: { role: Role; term: number; leader: NodeId };
}

export interface DriverCounters {
  readies: number;
  fsyncs: number;
  messagesDroppedInboxFull: number;
  messagesUndecodable: number;
  messagesMisaddressed: number;
  /** Messages for a member whose address is not known yet (see setPeerAddress). */
  messagesToUnknownPeer: number;
  stalls: number;
  snapshotsTaken: number;
}

export interface RaftDriverStatus extends Status {
  transport: TransportCounters;
  driver: DriverCounters;
  /** Local monotonic time of the last detected event-loop stall, if any. */
  lastStallAtMs: number | null;
}

interface PendingProposal {
  term: number;
  resolve(index: number): void;
  reject(error: Error): void;
}

interface Input {
  run(): void;
  /** Settles the caller's promise when the input is dropped at shutdown. */
  refuse?(error: Error): void;
}

const DEFAULTS = {
  snapshotEveryEntries: 1000,
  maxProposalBytes: 1024 * 1024,
  maxPendingProposals: 1024,
  maxInboxMessages: 4096,
};

export class RaftDriver implements Service {
  private readonly clock: () => number;
  private readonly settings: typeof DEFAULTS;
  private readonly finished = deferred<void>();
  readonly done: Promise<void> = this.finished.promise;

  private storage: FileStorage | null = null;
  private core: RaftNode | null = null;
  private transport: TcpTransport | null = null;
  private timer: NodeJS.Timeout | null = null;
  private lastTimerAtMs = 0;
  /** Leases from rounds started before this time are void (an event-loop stall was seen). */
  private stallFenceMs: number | null = null;
  /** When a message from the current leader was last stepped (followers). */
  private leaderContactAtMs: number | null = null;

  private inbox: Input[] = [];
  private queuedMessages = 0;
  private tickQueued = false;
  private pumping = false;
  private idle: Promise<void> = Promise.resolve();
  private state: 'new' | 'running' | 'stopping' | 'stopped' = 'new';
  private readonly pending = new Map<number, PendingProposal>();
  private lastSnapshotIndex = 0;
  private last: { role: Role; term: number; leader: NodeId } = { role: 'follower', term: 0, leader: '' };
  private readonly changeListeners = new Set<(change: RaftChange) => void>();
  private readonly stallListeners = new Set<(gapMs: number) => void>();
  readonly counters: DriverCounters = {
    readies: 0,
    fsyncs: 0,
    messagesDroppedInboxFull: 0,
    messagesUndecodable: 0,
    messagesMisaddressed: 0,
    messagesToUnknownPeer: 0,
    stalls: 0,
    snapshotsTaken: 0,
  };

  constructor(private readonly options: RaftDriverOptions) {
    this.clock = options.clock ?? (() => performance.now());
    this.settings = {
      snapshotEveryEntries: options.snapshotEveryEntries ?? DEFAULTS.snapshotEveryEntries,
      maxProposalBytes: options.maxProposalBytes ?? DEFAULTS.maxProposalBytes,
      maxPendingProposals: options.maxPendingProposals ?? DEFAULTS.maxPendingProposals,
      maxInboxMessages: options.maxInboxMessages ?? DEFAULTS.maxInboxMessages,
    };
  }

  /** Recovers durable state, restores the state machine, starts the network and the timer. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error('raft driver: start() called twice');
    const { options } = this;
    const logger = options.logger;
    this.storage = await FileStorage.open(options.dataDir, { logger });
    const initial = this.storage.initialState(options.bootstrap);
    if (initial.snapshot !== undefined) {
      await options.stateMachine.restore(initial.snapshot);
      this.lastSnapshotIndex = initial.snapshot.metadata.index;
    }
    const seed = options.seed ?? randomInt(2 ** 32 - 1);
    this.core = new RaftNode(
      {
        id: options.id,
        ...options.timing,
        ...(options.voteCheck !== undefined ? { voteCheck: options.voteCheck } : {}),
      },
      initial,
      new SeededRng(seed),
      this.clock,
    );
    const status = this.core.status();
    this.last = { role: status.role, term: status.term, leader: status.leader };
    this.transport = new TcpTransport({
      self: options.id,
      clusterId: options.clusterId,
      secret: options.secret,
      listen: options.listen,
      peers: options.peers,
      logger,
      random: options.random ?? Math.random,
      onMessage: (from, payload) => this.receive(from, payload),
    });
    await this.transport.start();
    this.state = 'running';
    this.lastTimerAtMs = this.clock();
    this.timer = setInterval(() => this.onTimer(), options.timing.tickMs);
    logger.info('raft node started', {
      id: options.id,
      term: status.term,
      commit: status.commit,
      lastIndex: status.lastIndex,
      firstIndex: status.firstIndex,
      address: this.transport.address(),
    });
    this.pump();
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'stopping') return this.done.catch(() => {});
    if (this.state === 'new') {
      this.state = 'stopped';
      this.finished.resolve();
      return;
    }
    this.state = 'stopping';
    await this.shutdown(null);
  }

  /** Tells the transport where a (new) member listens. */
  setPeerAddress(id: NodeId, address: PeerAddress): void {
    this.requireTransport().setPeerAddress(id, address);
  }

  /** Drops a removed member's connection and stops accepting its frames. */
  removePeer(id: NodeId): void {
    this.requireTransport().removePeer(id);
  }

  /** The bound Raft address (useful when listening on port 0). */
  address(): PeerAddress {
    return this.requireTransport().address();
  }

  /**
   * Proposes `data`; resolves with its log index once it is committed and
   * applied here. Rejects with ProposalRejectedError when it surely did not
   * commit, ProposalOutcomeUnknownError when leadership was lost with it in flight.
   */
  propose(data: Uint8Array): Promise<number> {
    return this.submit(data, (core) => core.propose(data));
  }

  /** A single-server membership change; settles like propose(). One at a time, per the core. */
  proposeConfChange(change: ConfChange): Promise<number> {
    return this.submit(encodeConfChange(change), (core) => core.proposeConfChange(change));
  }

  private submit(data: Uint8Array, proposeTo: (core: RaftNode) => ProposeResult): Promise<number> {
    if (data.length > this.settings.maxProposalBytes) {
      return Promise.reject(
        new ProposalRejectedError(
          'tooLarge',
          `raft proposal of ${data.length} bytes exceeds maxProposalBytes ${this.settings.maxProposalBytes}`,
        ),
      );
    }
    return new Promise<number>((resolve, reject) => {
      this.enqueue(() => {
        if (this.pending.size >= this.settings.maxPendingProposals) {
          reject(
            new ProposalRejectedError('tooManyPending', 'too many raft proposals in flight; retry later'),
          );
          return;
        }
        const result = proposeTo(this.requireCore());
        if (!result.ok) {
          reject(new ProposalRejectedError(result.reason, `raft proposal refused: ${result.reason}`));
          return;
        }
        this.pending.set(result.index, { term: result.term, resolve, reject });
      }, reject);
    });
  }

  /** Asks the leader (this node) to hand leadership to `to`; false if it cannot now. */
  transferLeader(to: NodeId): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.enqueue(() => resolve(this.requireCore().transferLeader(to)), reject);
    });
  }

  /** Starts an election now (still subject to the vote guard); false if refused. */
  campaign(): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.enqueue(() => resolve(this.requireCore().campaign()), reject);
    });
  }

  /** This node's fitness (its PostgreSQL LSN), sent with its vote requests. */
  setFitness(fitness: bigint): void {
    this.requireCore().setFitness(fitness);
  }

  /** false: this node never starts an election nor accepts a leadership transfer. */
  setCampaignAllowed(allowed: boolean): void {
    this.requireCore().setCampaignAllowed(allowed);
  }

  /**
   * Local monotonic ms until which this node may act as the only leader (stop
   * margin already subtracted), or null. After an event-loop stall it stays null
   * until a heartbeat round started after the stall is acknowledged by a quorum.
   */
  leaseValidUntil(): number | null {
    const until = this.core?.leaseValidUntil() ?? null;
    if (until === null) return null;
    if (this.stallFenceMs !== null) {
      const roundStartMs = until - (this.options.timing.leaseMs - this.options.timing.leaseStopMarginMs);
      if (roundStartMs < this.stallFenceMs) return null;
    }
    return until;
  }

  /**
   * Local monotonic ms when this follower last heard from its leader (null if
   * never): a proxy that has not heard from a leader within the lease holds writes.
   */
  lastLeaderContactMs(): number | null {
    return this.leaderContactAtMs;
  }

  isLeaderWithLease(nowMs: number = this.clock()): boolean {
    const until = this.leaseValidUntil();
    return until !== null && nowMs < until;
  }

  status(): RaftDriverStatus {
    const status = this.requireCore().status();
    return {
      ...status,
      leaseValidUntilMs: this.leaseValidUntil(),
      transport: this.requireTransport().counters,
      driver: { ...this.counters },
      lastStallAtMs: this.stallFenceMs,
    };
  }

  /** Role, term or leader changed. Returns an unsubscribe function. */
  onChange(listener: (change: RaftChange) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /** An event-loop stall past the lease stop margin was detected (the lease was voided). */
  onStall(listener: (gapMs: number) => void): () => void {
    this.stallListeners.add(listener);
    return () => this.stallListeners.delete(listener);
  }

  // ---- inputs ----

  private onTimer(): void {
    const now = this.clock();
    const gapMs = now - this.lastTimerAtMs;
    this.lastTimerAtMs = now;
    // A stall this long may have delayed any action taken under the lease past
    // its stop margin: distrust the lease until a fresh round proves it again.
    if (gapMs > this.options.timing.leaseStopMarginMs) {
      this.stallFenceMs = now;
      this.counters.stalls++;
      this.options.logger.warn('raft event loop stalled; lease voided until the next acknowledged round', {
        gapMs: Math.round(gapMs),
        stopMarginMs: this.options.timing.leaseStopMarginMs,
      });
      for (const listener of this.stallListeners) listener(gapMs);
    }
    if (this.tickQueued) return;
    this.tickQueued = true;
    this.enqueue(() => {
      this.tickQueued = false;
      this.requireCore().tick();
    });
  }

  private receive(from: string, payload: Uint8Array): void {
    let message: ReturnType<typeof decodeMessage>;
    try {
      message = decodeMessage(payload);
    } catch (error) {
      if (!(error instanceof CodecError)) throw error;
      this.counters.messagesUndecodable++;
      this.options.logger.warn('raft message undecodable; dropped', { from, error: error.message });
      return;
    }
    // The frame's sender is authenticated; the message must not claim another.
    if (message.from !== from || message.to !== this.options.id) {
      this.counters.messagesMisaddressed++;
      this.options.logger.warn('raft message misaddressed; dropped', {
        from,
        claimed: message.from,
        to: message.to,
      });
      return;
    }
    if (this.queuedMessages >= this.settings.maxInboxMessages) {
      this.counters.messagesDroppedInboxFull++;
      return;
    }
    this.queuedMessages++;
    this.enqueue(() => {
      this.queuedMessages--;
      const core = this.requireCore();
      core.step(message);
      // Only a leader sends these; count them once the core accepted the sender as leader.
      const fromLeader = message.type === 'app' || message.type === 'heartbeat' || message.type === 'snap';
      if (fromLeader && core.status().leader === message.from) this.leaderContactAtMs = this.clock();
    });
  }

  private enqueue(run: () => void, refuse?: (error: Error) => void): void {
    if (this.state !== 'running') {
      refuse?.(new ProposalRejectedError('stopped', 'raft driver is not running'));
      return;
    }
    if (refuse !== undefined && this.inbox.length >= this.settings.maxInboxMessages) {
      refuse(new ProposalRejectedError('busy', 'raft driver inbox full; retry later'));
      return;
    }
    this.inbox.push(refuse === undefined ? { run } : { run, refuse });
    this.pump();
  }

  // ---- the Ready loop ----

  private pump(): void {
    if (this.pumping || this.state !== 'running') return;
    this.pumping = true;
    this.idle = this.runLoop()
      .catch((error: unknown) => this.fail(error))
      .finally(() => {
        this.pumping = false;
        // Inputs that arrived between the loop's last look and now.
        if (this.inbox.length > 0) this.pump();
      });
  }

  private async runLoop(): Promise<void> {
    const core = this.requireCore();
    while (this.state === 'running') {
      const inputs = this.inbox;
      this.inbox = [];
      for (const input of inputs) input.run();
      if (!core.hasReady()) {
        if (this.inbox.length === 0) return;
        continue;
      }
      await this.handleReady(core, core.ready());
    }
  }

  private async handleReady(core: RaftNode, rd: Ready): Promise<void> {
    const storage = this.requireStorage();
    this.counters.readies++;
    if (rd.snapshot !== undefined || rd.entries.length > 0 || rd.hardState !== undefined) {
      await storage.persist(rd);
      if (rd.mustSync) this.counters.fsyncs++;
    }
    const transport = this.requireTransport();
    for (const message of rd.messages) {
      // A member added to the group before its address reached setPeerAddress.
      if (!transport.hasPeer(message.to)) {
        this.counters.messagesToUnknownPeer++;
        continue;
      }
      transport.send(message.to, encodeMessage(message));
    }
    if (rd.snapshot !== undefined) {
      await this.options.stateMachine.restore(rd.snapshot);
      this.lastSnapshotIndex = rd.snapshot.metadata.index;
      this.rejectPendingUpTo(rd.snapshot.metadata.index);
    }
    if (rd.committedEntries.length > 0) await this.options.stateMachine.apply(rd.committedEntries);
    core.advance(rd);
    this.settleProposals(rd.committedEntries);
    this.noticeChanges(core);
    await this.maybeSnapshot(core, storage);
  }

  private settleProposals(committed: readonly Entry[]): void {
    for (const entry of committed) {
      const proposal = this.pending.get(entry.index);
      if (proposal === undefined) continue;
      this.pending.delete(entry.index);
      if (entry.term === proposal.term) proposal.resolve(entry.index);
      else {
        proposal.reject(
          new ProposalRejectedError(
            'overwritten',
            `raft proposal at ${entry.index} was replaced by another leader`,
          ),
        );
      }
    }
  }

  // A snapshot jumps over indexes: proposals there cannot be matched to entries any more.
  private rejectPendingUpTo(index: number): void {
    for (const [at, proposal] of this.pending) {
      if (at > index) continue;
      this.pending.delete(at);
      proposal.reject(new ProposalOutcomeUnknownError(`raft proposal at ${at} was covered by a snapshot`));
    }
  }

  private noticeChanges(core: RaftNode): void {
    const { role, term, leader } = core.status();
    const previous = this.last;
    if (role === previous.role && term === previous.term && leader === previous.leader) return;
    this.last = { role, term, leader };
    this.options.logger.info('raft role changed', {
      role,
      term,
      leader,
      previousRole: previous.role,
      previousTerm: previous.term,
    });
    if (previous.role === 'leader' && role !== 'leader') {
      for (const [index, proposal] of this.pending) {
        proposal.reject(
          new ProposalOutcomeUnknownError(`raft leadership lost with the proposal at ${index} in flight`),
        );
      }
      this.pending.clear();
    }
    for (const listener of this.changeListeners) listener({ role, term, leader, previous });
  }

  private async maybeSnapshot(core: RaftNode, storage: FileStorage): Promise<void> {
    const { applied, confState } = core.status();
    if (applied - this.lastSnapshotIndex < this.settings.snapshotEveryEntries) return;
    const data = this.options.stateMachine.snapshot();
    const term = storage.term(applied);
    if (term === undefined) throw new Error(`raft driver: no term known for applied index ${applied}`);
    core.compact(applied, data);
    // Conf changes take effect when applied, so the current membership is the one as of `applied`.
    await storage.saveSnapshot({ metadata: { index: applied, term, confState }, data });
    this.lastSnapshotIndex = applied;
    this.counters.snapshotsTaken++;
  }

  // ---- shutdown ----

  // Storage or state-machine failures are fatal: after a failed fsync the disk
  // state is unknown and retrying would risk acknowledging lost data.
  private fail(error: unknown): void {
    this.options.logger.error('raft driver failed; stopping this node', {
      error: error instanceof Error ? error.message : String(error),
    });
    if (this.state === 'running') {
      this.state = 'stopping';
      void this.shutdown(error instanceof Error ? error : new Error(String(error)));
    }
  }

  private async shutdown(error: Error | null): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.idle.catch(() => {});
    const unknown = error ?? new Error('raft driver stopped');
    for (const [index, proposal] of this.pending) {
      proposal.reject(new ProposalOutcomeUnknownError(`raft proposal at ${index}: ${unknown.message}`));
    }
    this.pending.clear();
    for (const input of this.inbox.splice(0)) {
      input.refuse?.(new ProposalRejectedError('stopped', 'raft driver stopped before the request ran'));
    }
    await this.transport?.stop();
    await this.storage?.close().catch(() => {});
    this.state = 'stopped';
    if (error === null) this.finished.resolve();
    else this.finished.reject(error);
  }

  private requireCore(): RaftNode {
    if (this.core === null) throw new Error('raft driver: not started');
    return this.core;
  }

  private requireTransport(): TcpTransport {
    if (this.transport === null) throw new Error('raft driver: not started');
    return this.transport;
  }

  private requireStorage(): FileStorage {
    if (this.storage === null) throw new Error('raft driver: not started');
    return this.storage;
  }
}
