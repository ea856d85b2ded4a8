import {
  allMembers,
  applyConfChange,
  assertValidConfState,
  cloneConfState,
  decodeConfChange,
  encodeConfChange,
  quorumMembers,
  validateConfChange,
} from './confchange.ts';
import { LeaseTracker } from './lease.ts';
import { RaftLog } from './log.ts';
import { Progress } from './progress.ts';
import { quorumMatchIndex, tallyVotes } from './quorum.ts';
import {
  type Clock,
  type ConfChange,
  type Config,
  type ConfState,
  type Entry,
  type HardState,
  type InitialState,
  type Message,
  type MsgApp,
  type MsgHeartbeat,
  type MsgSnap,
  type MsgVote,
  type MsgVoteResp,
  NONE,
  type NodeId,
  type ProposeResult,
  type Ready,
  type Rng,
  type Role,
  type SoftState,
  type Status,
} from './types.ts';

const EMPTY = new Uint8Array(0);

/** Checks a Config, including the lease bound L <= E(1−ρ)/(1+ρ); throws on a bad one. */
export function validateConfig(config: Config): void {
  const positiveInt = (name: string, value: number) => {
    if (!Number.isInteger(value) || value < 1)
      throw new Error(`raft config: ${name} must be a positive integer`);
  };
  if (config.id === NONE) throw new Error('raft config: id must not be empty');
  positiveInt('tickMs', config.tickMs);
  positiveInt('heartbeatTicks', config.heartbeatTicks);
  positiveInt('electionTicks', config.electionTicks);
  if (config.heartbeatTicks >= config.electionTicks) {
    throw new Error('raft config: heartbeatTicks must be smaller than electionTicks');
  }
  const rho = config.maxClockDrift;
  if (!(rho >= 0 && rho < 1)) throw new Error('raft config: maxClockDrift must be in [0, 1)');
  const electionMs = config.electionTicks * config.tickMs;
  const bound = (electionMs * (1 - rho)) / (1 + rho);
  if (!(config.leaseMs > 0 && config.leaseMs <= bound)) {
    throw new Error(
      `raft config: leaseMs ${config.leaseMs} breaks the lease bound L <= E(1-rho)/(1+rho) = ${bound.toFixed(1)} ms ` +
        `(E = ${electionMs} ms, rho = ${rho}); lower leaseMs or raise electionTicks`,
    );
  }
  if (!(config.leaseStopMarginMs >= 0 && config.leaseStopMarginMs < config.leaseMs)) {
    throw new Error('raft config: leaseStopMarginMs must be in [0, leaseMs)');
  }
  if (config.heartbeatTicks * config.tickMs >= config.leaseMs - config.leaseStopMarginMs) {
    throw new Error(
      'raft config: a heartbeat round must be shorter than the usable lease (leaseMs - margin)',
    );
  }
}

/**
 * The Raft state machine (etcd-io/raft's raft + RawNode): deterministic,
 * synchronous, no IO. See types.ts for the driver contract.
 */
export class RaftNode {
  readonly id: NodeId;
  private readonly electionMs: number;
  private readonly maxInflight: number;
  private readonly maxEntriesPerMsg: number;
  private readonly maxUncommitted: number;

  private term: number;
  private vote: NodeId;
  private lead: NodeId = NONE;
  private role: Role = 'follower';
  private readonly log: RaftLog;
  private conf: ConfState;
  /** Membership after each applied conf change, to stamp snapshots taken at older indexes. */
  private confHistory: { index: number; conf: ConfState }[];

  private prs = new Map<NodeId, Progress>();
  private votes = new Map<NodeId, boolean>();
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  /**
   * Until this local time the node neither votes for another candidate nor
   * campaigns on its own: E after it last heard its leader, and E after boot since
   * that time was volatile. This is what makes the leader's lease safe.
   */
  private voteGuardUntilMs: number;
  private leadTransferee: NodeId = NONE;
  /** TimeoutNow is out: the target may win at any time, so this term's lease is void for good. */
  private leaseForfeited = false;
  private pendingConfIndex = 0;
  private noopIndex = 0;
  private readonly lease: LeaseTracker;
  private fitness = 0n;
  private campaignAllowed = true;

  private msgs: Message[] = [];
  private prevHardState: HardState;
  private prevSoftState: SoftState = { role: 'follower', leader: NONE };
  private outstanding: Ready | null = null;

  constructor(
    private readonly config: Config,
    initial: InitialState,
    private readonly rng: Rng,
    private readonly clock: Clock,
  ) {
    validateConfig(config);
    this.id = config.id;
    this.electionMs = config.electionTicks * config.tickMs;
    this.maxInflight = config.maxInflightMsgs ?? 64;
    this.maxEntriesPerMsg = config.maxEntriesPerMsg ?? 64;
    this.maxUncommitted = config.maxUncommittedEntries ?? 1024;
    this.log = new RaftLog(initial.snapshot, initial.entries, initial.hardState.commit);
    this.conf = cloneConfState(initial.snapshot?.metadata.confState ?? initial.confState);
    assertValidConfState(this.conf);
    this.confHistory = [{ index: this.log.snapshotIndex, conf: this.conf }];
    this.term = initial.hardState.term;
    this.vote = initial.hardState.vote;
    this.prevHardState = { ...initial.hardState, commit: this.log.committed };
    this.lease = new LeaseTracker(config.leaseMs, config.leaseStopMarginMs);
    this.voteGuardUntilMs = clock() + this.electionMs;
    this.resetRandomizedElectionTimeout();
  }

  // ---- inputs ----

  tick(): void {
    this.assertNoOutstandingReady('tick');
    if (this.role === 'leader') this.tickLeader();
    else this.tickElection();
  }

  /** Starts an election now (through PreVote); false if this node may not campaign yet. */
  campaign(): boolean {
    this.assertNoOutstandingReady('campaign');
    return this.hup();
  }

  propose(data: Uint8Array): ProposeResult {
    this.assertNoOutstandingReady('propose');
    const refusal = this.proposalRefusal();
    if (refusal !== null) return { ok: false, reason: refusal };
    const entry = this.appendEntry('normal', data);
    return { ok: true, index: entry.index, term: entry.term };
  }

  /** One single-server change at a time, only once this leader's no-op is committed (bug 9). */
  proposeConfChange(change: ConfChange): ProposeResult {
    this.assertNoOutstandingReady('proposeConfChange');
    const refusal = this.proposalRefusal();
    if (refusal !== null) return { ok: false, reason: refusal };
    if (this.log.committed < this.noopIndex) return { ok: false, reason: 'leaderNoopNotCommitted' };
    if (this.pendingConfIndex > this.log.applied) return { ok: false, reason: 'confChangeInProgress' };
    if (validateConfChange(this.conf, change) !== null) return { ok: false, reason: 'invalidConfChange' };
    const entry = this.appendEntry('confChange', encodeConfChange(change));
    this.pendingConfIndex = entry.index;
    return { ok: true, index: entry.index, term: entry.term };
  }

  /** Hands leadership to `to` (thesis §3.10); false if that is not possible now. */
  transferLeader(to: NodeId): boolean {
    this.assertNoOutstandingReady('transferLeader');
    if (this.role !== 'leader' || to === this.id || !this.conf.voters.includes(to)) return false;
    if (this.leadTransferee === to) return true;
    if (this.leaseForfeited) return false;
    this.leadTransferee = to;
    this.electionElapsed = 0;
    const pr = this.prs.get(to)!;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(to);
    else this.sendAppend(to);
    return true;
  }

  setFitness(fitness: bigint): void {
    this.fitness = fitness;
  }

  setCampaignAllowed(allowed: boolean): void {
    this.campaignAllowed = allowed;
  }

  step(m: Message): void {
    this.assertNoOutstandingReady('step');
    if (m.to !== this.id) throw new Error(`raft: message for ${m.to} stepped into ${this.id}`);
    if (m.term > this.term) {
      const isVoteRequest = m.type === 'vote' || m.type === 'preVote';
      // Leader stickiness and the lease: a node that heard a live leader within E
      // ignores a disruptive candidate entirely, term included.
      if (isVoteRequest && !m.transfer && this.inVoteGuard()) return;
      if (m.type === 'preVote' || (m.type === 'preVoteResp' && !m.reject)) {
        // A PreVote never changes terms: it probes a term nobody entered yet.
      } else {
        const fromLeader = m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap';
        this.becomeFollower(m.term, fromLeader ? m.from : NONE);
      }
    } else if (m.term < this.term) {
      if (m.type === 'app' || m.type === 'heartbeat') {
        // Tell a stale leader about the newer term so that it steps down.
        this.send({
          type: 'appResp',
          from: this.id,
          to: m.from,
          term: this.term,
          index: 0,
          reject: false,
          rejectHint: 0,
        });
      } else if (m.type === 'preVote') {
        this.send({ type: 'preVoteResp', from: this.id, to: m.from, term: this.term, reject: true });
      }
      return;
    }

    if (m.type === 'vote' || m.type === 'preVote') {
      this.handleVoteRequest(m);
      return;
    }
    if (this.role === 'leader') this.stepLeader(m);
    else if (this.role === 'follower') this.stepFollower(m);
    else this.stepCandidate(m);
  }

  // ---- outputs ----

  hasReady(): boolean {
    if (this.outstanding !== null) return false;
    return (
      this.msgs.length > 0 ||
      this.log.pendingSnapshot !== undefined ||
      this.log.persisted < this.log.lastIndex() ||
      this.log.committed > this.log.applied ||
      !sameHardState(this.hardState(), this.prevHardState) ||
      !sameSoftState(this.softState(), this.prevSoftState)
    );
  }

  ready(): Ready {
    this.assertNoOutstandingReady('ready');
    const hardState = this.hardState();
    const softState = this.softState();
    const entries = this.log.unstableEntries();
    const snapshot = this.log.pendingSnapshot;
    const hardChanged = !sameHardState(hardState, this.prevHardState);
    const rd: Ready = {
      entries,
      committedEntries: this.log.nextCommittedEntries(),
      messages: this.msgs,
      mustSync:
        entries.length > 0 ||
        snapshot !== undefined ||
        hardState.term !== this.prevHardState.term ||
        hardState.vote !== this.prevHardState.vote,
    };
    if (hardChanged) rd.hardState = hardState;
    if (!sameSoftState(softState, this.prevSoftState)) rd.softState = softState;
    if (snapshot !== undefined) rd.snapshot = snapshot;
    this.msgs = [];
    this.outstanding = rd;
    return rd;
  }

  advance(rd: Ready): void {
    if (rd !== this.outstanding)
      throw new Error('raft: advance() with a Ready that is not the outstanding one');
    this.outstanding = null;
    if (rd.hardState !== undefined) this.prevHardState = rd.hardState;
    if (rd.softState !== undefined) this.prevSoftState = rd.softState;
    if (rd.snapshot !== undefined && this.log.pendingSnapshot === rd.snapshot)
      this.log.pendingSnapshot = undefined;
    const lastEntry = rd.entries[rd.entries.length - 1];
    if (lastEntry !== undefined && this.log.term(lastEntry.index) === lastEntry.term) {
      this.log.persisted = Math.max(this.log.persisted, lastEntry.index);
    }
    for (const entry of rd.committedEntries) {
      if (entry.index !== this.log.applied + 1)
        throw new Error('raft: committed entries applied out of order');
      this.log.applied = entry.index;
      if (entry.type === 'confChange') this.applyConfChangeEntry(entry);
    }
  }

  /**
   * Local monotonic ms until which this node may act as the only leader: the
   * lease minus the stop margin. Null unless it leads, its no-op is committed and a
   * quorum acked a round. Valid while clock() < the returned value.
   */
  leaseValidUntil(): number | null {
    if (this.role !== 'leader' || this.leaseForfeited || this.log.committed < this.noopIndex) return null;
    return this.lease.validUntilMs();
  }

  /** The end of the lease itself (no stop margin); for the simulator's safety check. */
  leaseExpiresAt(): number | null {
    if (this.role !== 'leader' || this.leaseForfeited || this.log.committed < this.noopIndex) return null;
    return this.lease.expiresAtMs();
  }

  /**
   * Takes a snapshot at `index` (<= applied) holding the application's state
   * `data`, and drops the log up to it. The caller persists the snapshot itself.
   */
  compact(index: number, data: Uint8Array): void {
    this.assertNoOutstandingReady('compact');
    if (index > this.log.applied) throw new Error(`raft: compact(${index}) past applied ${this.log.applied}`);
    if (index <= this.log.snapshotIndex) return;
    const term = this.log.term(index)!;
    let conf = this.confHistory[0]!.conf;
    for (const h of this.confHistory) if (h.index <= index) conf = h.conf;
    this.log.compact({ metadata: { index, term, confState: cloneConfState(conf) }, data });
    this.confHistory = [{ index, conf }, ...this.confHistory.filter((h) => h.index > index)];
  }

  status(): Status {
    const progress: Status['progress'] = {};
    if (this.role === 'leader') for (const [id, pr] of this.prs) progress[id] = pr.status();
    return {
      id: this.id,
      term: this.term,
      vote: this.vote,
      role: this.role,
      leader: this.lead,
      commit: this.log.committed,
      applied: this.log.applied,
      lastIndex: this.log.lastIndex(),
      firstIndex: this.log.firstIndex(),
      confState: cloneConfState(this.conf),
      progress,
      leadTransferee: this.leadTransferee,
      leaseValidUntilMs: this.leaseValidUntil(),
      fitness: this.fitness,
      campaignAllowed: this.campaignAllowed,
    };
  }

  /** Entries [lo, hi) of the in-memory log (for tests and diagnostics). */
  entries(lo: number, hi: number): Entry[] {
    return this.log.slice(Math.max(lo, this.log.firstIndex()), Math.min(hi, this.log.lastIndex() + 1));
  }

  // ---- roles ----

  private reset(term: number): void {
    if (term !== this.term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.leadTransferee = NONE;
    this.leaseForfeited = false;
    this.votes.clear();
    this.prs.clear();
    this.pendingConfIndex = 0;
    this.noopIndex = 0;
    this.lease.reset();
  }

  private becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.role = 'follower';
  }

  private becomePreCandidate(): void {
    if (this.role === 'leader') throw new Error('raft: a leader cannot become a pre-candidate');
    // Term and vote stay: a PreVote must not disturb anyone (thesis §9.6).
    this.lead = NONE;
    this.votes.clear();
    this.electionElapsed = 0;
    this.resetCampaignRetryTimeout();
    this.role = 'preCandidate';
  }

  private becomeCandidate(): void {
    if (this.role === 'leader') throw new Error('raft: a leader cannot become a candidate');
    this.reset(this.term + 1);
    this.resetCampaignRetryTimeout();
    this.vote = this.id;
    this.role = 'candidate';
  }

  private becomeLeader(): void {
    if (this.role !== 'candidate') throw new Error('raft: only a candidate becomes leader');
    this.reset(this.term);
    this.lead = this.id;
    this.role = 'leader';
    const next = this.log.lastIndex() + 1;
    for (const id of allMembers(this.conf)) {
      const pr = new Progress(next, this.maxInflight);
      if (id === this.id) {
        pr.match = next - 1;
        pr.becomeReplicate();
      }
      // Only acks in this term count for CheckQuorum; the election's votes do not.
      pr.recentActive = id === this.id;
      this.prs.set(id, pr);
    }
    // Conf changes already in the log may be pending: do not allow another before they apply.
    this.pendingConfIndex = this.log.lastIndex();
    // A no-op lets this leader commit, and so learn the commit point (paper §5.4.2, Figure 8).
    this.noopIndex = this.appendEntry('noop', EMPTY).index;
    this.broadcastHeartbeat();
  }

  private hup(): boolean {
    if (this.role === 'leader') return false;
    if (!this.promotable() || !this.campaignAllowed) return false;
    if (this.inVoteGuard()) return false;
    this.becomePreCandidate();
    this.votes.set(this.id, true);
    if (tallyVotes(quorumMembers(this.conf), this.votes) === 'won') {
      this.startElection(false);
      return true;
    }
    this.requestVotes('preVote', this.term + 1, false);
    return true;
  }

  private startElection(transfer: boolean): void {
    this.becomeCandidate();
    this.votes.set(this.id, true);
    if (tallyVotes(quorumMembers(this.conf), this.votes) === 'won') {
      this.becomeLeader();
      return;
    }
    this.requestVotes('vote', this.term, transfer);
  }

  private requestVotes(type: 'vote' | 'preVote', term: number, transfer: boolean): void {
    for (const id of quorumMembers(this.conf)) {
      if (id === this.id) continue;
      this.send({
        type,
        from: this.id,
        to: id,
        term,
        index: this.log.lastIndex(),
        logTerm: this.log.lastTerm(),
        fitness: this.fitness,
        transfer,
      });
    }
  }

  // ---- ticks ----

  private tickElection(): void {
    this.electionElapsed++;
    if (this.electionElapsed >= this.randomizedElectionTimeout && this.promotable()) {
      if (!this.hup()) this.electionElapsed = this.randomizedElectionTimeout;
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.config.electionTicks) {
      this.electionElapsed = 0;
      // CheckQuorum: a leader that has not heard from a quorum within E steps down.
      const members = quorumMembers(this.conf);
      const active = members.filter((id) => id === this.id || this.prs.get(id)?.recentActive === true);
      if (tallyVotes(members, new Map(active.map((id) => [id, true]))) !== 'won') {
        this.becomeFollower(this.term, NONE);
        return;
      }
      for (const [id, pr] of this.prs) if (id !== this.id) pr.recentActive = false;
      if (this.leadTransferee !== NONE) {
        if (this.leaseForfeited) {
          // The target may still win with the TimeoutNow in flight; this term has no lease left.
          this.becomeFollower(this.term, NONE);
          return;
        }
        this.leadTransferee = NONE;
      }
    }
    if (this.heartbeatElapsed >= this.config.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.broadcastHeartbeat();
    }
  }

  // ---- message handling ----

  private inVoteGuard(): boolean {
    return this.role === 'leader' || this.clock() < this.voteGuardUntilMs;
  }

  private heardFromLeader(leader: NodeId): void {
    this.electionElapsed = 0;
    this.lead = leader;
    this.voteGuardUntilMs = Math.max(this.voteGuardUntilMs, this.clock() + this.electionMs);
  }

  private handleVoteRequest(m: MsgVote): void {
    const respType = m.type === 'vote' ? 'voteResp' : 'preVoteResp';
    const canVote =
      this.vote === m.from ||
      (this.vote === NONE && this.lead === NONE) ||
      (m.type === 'preVote' && m.term > this.term);
    const guardOk = m.transfer || this.vote === m.from || !this.inVoteGuard();
    if (canVote && guardOk && this.log.isUpToDate(m.index, m.logTerm) && this.fitnessAcceptable(m)) {
      this.send({ type: respType, from: this.id, to: m.from, term: m.term, reject: false });
      if (m.type === 'vote') {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type: respType, from: this.id, to: m.from, term: this.term, reject: true });
    }
  }

  private fitnessAcceptable(m: MsgVote): boolean {
    if (this.config.voteCheck !== undefined) return this.config.voteCheck(m.from, m.fitness);
    return m.fitness >= this.fitness;
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'app':
        this.heardFromLeader(m.from);
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.heardFromLeader(m.from);
        this.handleHeartbeat(m);
        return;
      case 'snap':
        this.heardFromLeader(m.from);
        this.handleSnapshot(m);
        return;
      case 'timeoutNow':
        if (this.promotable() && this.campaignAllowed) this.startElection(true);
        return;
      default:
        return;
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case 'app':
      case 'heartbeat':
      case 'snap':
        this.becomeFollower(this.term, m.from);
        this.stepFollower(m);
        return;
      case 'voteResp':
      case 'preVoteResp':
        this.handleVoteResponse(m);
        return;
      default:
        return;
    }
  }

  private handleVoteResponse(m: MsgVoteResp): void {
    const expected = this.role === 'candidate' ? 'voteResp' : 'preVoteResp';
    if (m.type !== expected) return;
    if (!this.votes.has(m.from)) this.votes.set(m.from, !m.reject);
    const outcome = tallyVotes(quorumMembers(this.conf), this.votes);
    if (outcome === 'won') {
      if (this.role === 'preCandidate') this.startElection(false);
      else this.becomeLeader();
    } else if (outcome === 'lost') {
      this.becomeFollower(this.term, NONE);
      this.resetCampaignRetryTimeout();
    }
  }

  private handleAppend(m: MsgApp): void {
    const reply = (index: number, reject: boolean, rejectHint: number) =>
      this.send({ type: 'appResp', from: this.id, to: m.from, term: this.term, index, reject, rejectHint });
    if (m.index < this.log.committed) {
      reply(this.log.committed, false, 0);
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew === null) reply(m.index, true, this.log.lastIndex());
    else reply(lastNew, false, 0);
  }

  private handleHeartbeat(m: MsgHeartbeat): void {
    this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));
    this.send({ type: 'heartbeatResp', from: this.id, to: m.from, term: this.term, round: m.round });
  }

  private handleSnapshot(m: MsgSnap): void {
    const { index, term, confState } = m.snapshot.metadata;
    if (index > this.log.committed) {
      if (this.log.matchTerm(index, term)) {
        this.log.commitTo(index);
      } else {
        this.log.restore(m.snapshot);
        this.conf = cloneConfState(confState);
        assertValidConfState(this.conf);
        this.confHistory = [{ index, conf: this.conf }];
      }
    }
    this.send({
      type: 'appResp',
      from: this.id,
      to: m.from,
      term: this.term,
      index: this.log.committed,
      reject: false,
      rejectHint: 0,
    });
  }

  private stepLeader(m: Message): void {
    const pr = this.prs.get(m.from);
    if (pr === undefined) return;
    if (m.type === 'appResp') {
      pr.recentActive = true;
      if (m.reject) {
        if (pr.maybeDecrTo(m.index, m.rejectHint)) {
          if (pr.state === 'replicate') pr.becomeProbe();
          this.sendAppend(m.from);
        }
        return;
      }
      const wasPaused = pr.isPaused();
      if (!pr.maybeUpdate(m.index)) return;
      if (pr.state === 'probe') pr.becomeReplicate();
      else if (pr.state === 'snapshot' && pr.match >= pr.pendingSnapshot) pr.becomeProbe();
      else if (pr.state === 'replicate') pr.freeUpTo(m.index);
      if (this.maybeCommit()) this.broadcastAppend();
      else if (wasPaused) this.sendAppend(m.from);
      let more = true;
      while (more) more = this.sendAppend(m.from, false);
      if (m.from === this.leadTransferee && pr.match === this.log.lastIndex() && !this.leaseForfeited) {
        this.sendTimeoutNow(m.from);
      }
    } else if (m.type === 'heartbeatResp') {
      pr.recentActive = true;
      pr.probeSent = false;
      this.lease.ack(m.round, m.from, quorumMembers(this.conf));
      if (pr.state === 'snapshot' || (pr.state === 'replicate' && pr.inflightFull())) pr.becomeProbe();
      if (pr.match < this.log.lastIndex()) this.sendAppend(m.from);
    }
  }

  // ---- replication ----

  private proposalRefusal(): 'notLeader' | 'leaderTransferInProgress' | 'uncommittedLimit' | null {
    if (this.role !== 'leader') return 'notLeader';
    if (this.leadTransferee !== NONE) return 'leaderTransferInProgress';
    if (this.log.lastIndex() - this.log.committed >= this.maxUncommitted) return 'uncommittedLimit';
    return null;
  }

  private appendEntry(type: Entry['type'], data: Uint8Array): Entry {
    const entry: Entry = { index: this.log.lastIndex() + 1, term: this.term, type, data };
    this.log.append([entry]);
    this.prs.get(this.id)?.maybeUpdate(entry.index);
    this.maybeCommit();
    this.broadcastAppend();
    return entry;
  }

  /** Commits the quorum-matched index, but only an entry of the current term (paper §5.4.2). */
  private maybeCommit(): boolean {
    const members = quorumMembers(this.conf);
    const index = quorumMatchIndex(members, (id) => this.prs.get(id)?.match ?? 0);
    if (index <= this.log.committed || this.log.term(index) !== this.term) return false;
    this.log.commitTo(index);
    return true;
  }

  private broadcastAppend(): void {
    for (const id of this.prs.keys()) if (id !== this.id) this.sendAppend(id);
  }

  private broadcastHeartbeat(): void {
    const round = this.lease.startRound(this.clock(), this.id);
    this.lease.reevaluate(quorumMembers(this.conf));
    for (const [id, pr] of this.prs) {
      if (id === this.id) continue;
      const commit = Math.min(pr.match, this.log.committed);
      this.send({ type: 'heartbeat', from: this.id, to: id, term: this.term, commit, round });
    }
  }

  /**
   * Sends the next MsgApp (or the snapshot) to `to` unless its progress is paused.
   * With `sendIfEmpty` false, only a MsgApp carrying entries is sent.
   */
  private sendAppend(to: NodeId, sendIfEmpty = true): boolean {
    const pr = this.prs.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    if (prevTerm === undefined) {
      const snapshot = this.log.snapshot;
      if (snapshot === undefined)
        throw new Error(`raft: ${to} needs index ${prevIndex} but there is no snapshot`);
      pr.becomeSnapshot(snapshot.metadata.index);
      this.send({ type: 'snap', from: this.id, to, term: this.term, snapshot });
      return true;
    }
    const hi = Math.min(this.log.lastIndex() + 1, pr.next + this.maxEntriesPerMsg);
    const entries = this.log.slice(pr.next, hi);
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send({
      type: 'app',
      from: this.id,
      to,
      term: this.term,
      index: prevIndex,
      logTerm: prevTerm,
      entries,
      commit: this.log.committed,
    });
    pr.sentAppend(prevIndex + entries.length, entries.length);
    return true;
  }

  private sendTimeoutNow(to: NodeId): void {
    // From now on the target may win at any moment without waiting for leases to expire.
    this.leaseForfeited = true;
    this.lease.reset();
    this.send({ type: 'timeoutNow', from: this.id, to, term: this.term });
  }

  // ---- membership ----

  private applyConfChangeEntry(entry: Entry): void {
    const change = decodeConfChange(entry.data);
    this.conf = applyConfChange(this.conf, change);
    this.confHistory.push({ index: entry.index, conf: this.conf });
    if (this.role !== 'leader') return;
    const members = allMembers(this.conf);
    for (const id of members) {
      if (!this.prs.has(id)) this.prs.set(id, new Progress(this.log.lastIndex() + 1, this.maxInflight));
    }
    for (const id of [...this.prs.keys()]) if (!members.includes(id)) this.prs.delete(id);
    if (!this.conf.voters.includes(this.id) && !this.conf.witnesses.includes(this.id)) {
      this.becomeFollower(this.term, NONE);
      return;
    }
    if (this.leadTransferee !== NONE && !this.conf.voters.includes(this.leadTransferee)) {
      this.leadTransferee = NONE;
    }
    this.lease.reevaluate(quorumMembers(this.conf));
    if (this.maybeCommit()) this.broadcastAppend();
    else for (const id of members) if (id !== this.id) this.sendAppend(id);
  }

  // ---- helpers ----

  /** Only a campaigning voter runs for leader; witnesses and learners never do. */
  private promotable(): boolean {
    return this.conf.voters.includes(this.id);
  }

  /**
   * While campaigning (or right after losing) nobody is known to lead, so no lease
   * is at stake: retry after [E/2, E) instead of [E, 2E), so a split vote after a
   * leader crash still ends well within the failover budget.
   */
  private resetCampaignRetryTimeout(): void {
    const half = Math.ceil(this.config.electionTicks / 2);
    this.randomizedElectionTimeout = half + this.rng.intBelow(half);
  }

  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.config.electionTicks + this.rng.intBelow(this.config.electionTicks);
  }

  private send(m: Message): void {
    this.msgs.push(m);
  }

  private hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  private softState(): SoftState {
    return { role: this.role, leader: this.lead };
  }

  private assertNoOutstandingReady(what: string): void {
    if (this.outstanding !== null) {
      throw new Error(`raft: ${what}() between ready() and advance(); queue it until advance()`);
    }
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.role === b.role && a.leader === b.leader;
}
