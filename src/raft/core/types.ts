// Public types of the pure Raft core. Every field is a plain string, number,
// bigint, boolean, Uint8Array or array of those, so the binary codec for the wire
// and the WAL can be written straight from these declarations.
//
// API of `RaftNode` (src/raft/core/raft-node.ts), the only stateful class:
//   new RaftNode(config, initialState, rng, clock)   clock(): local monotonic ms
//   tick()                 one logical tick (config.tickMs of local time)
//   step(msg)              a message from a peer (msg.to must be this node)
//   propose(data)          leader only; returns ProposeResult
//   proposeConfChange(cc)  leader only, one at a time, after its no-op committed
//   campaign()             start an election now (still obeys the vote guard)
//   transferLeader(to)     leader only; ends with TimeoutNow to `to`
//   hasReady() / ready() / advance(ready)
//       the driver persists ready.snapshot, ready.entries and ready.hardState (one
//       fsync when ready.mustSync), THEN sends ready.messages, THEN restores
//       ready.snapshot.data into the state machine (if any) and applies
//       ready.committedEntries in order, THEN calls advance(ready).
//   leaseValidUntil()      local monotonic ms until which this leader may act as the
//                          only leader (stop margin already subtracted), or null
//   setFitness(bigint)     this node's fitness, carried in its (pre)vote requests
//   setCampaignAllowed(b)  false: never start an election nor accept TimeoutNow
//   compact(index, data)   snapshot at `index` (<= applied); drops older entries
//   status()               Status

/** A member id; '' (NONE) means "nobody". */
export type NodeId = string;
export const NONE: NodeId = '';

export type EntryType = 'normal' | 'confChange' | 'noop';

/**
 * One log entry. `data` is opaque for 'normal', an encoded ConfChange (see
 * encodeConfChange) for 'confChange', and empty for 'noop' (appended by every new
 * leader so that it can commit entries of its own term).
 */
export interface Entry {
  index: number;
  term: number;
  type: EntryType;
  data: Uint8Array;
}

/** What must be durable before any message of the same Ready is sent. */
export interface HardState {
  term: number;
  /** Whom this node voted for in `term`; NONE if nobody. */
  vote: NodeId;
  commit: number;
}

/**
 * Membership. `voters` campaign and vote; `witnesses` vote but never campaign;
 * `learners` receive the log and never vote. The three lists are disjoint; the
 * quorum is a majority of voters + witnesses.
 */
export interface ConfState {
  voters: NodeId[];
  witnesses: NodeId[];
  learners: NodeId[];
}

export type ConfChangeType = 'addVoter' | 'addWitness' | 'addLearner' | 'remove';

/** A single-server membership change; adding an existing member changes its kind. */
export interface ConfChange {
  type: ConfChangeType;
  node: NodeId;
}

export interface SnapshotMetadata {
  /** Last log index the snapshot covers. */
  index: number;
  /** Term of the entry at `index`. */
  term: number;
  /** Membership as of `index`. */
  confState: ConfState;
}

/** A state-machine snapshot; `data` is opaque to the core. */
export interface Snapshot {
  metadata: SnapshotMetadata;
  data: Uint8Array;
}

/** Fields every message carries. */
interface MessageBase {
  from: NodeId;
  to: NodeId;
  /** Sender's term; for a PreVote (and a granted PreVoteResp) the term it would campaign in. */
  term: number;
}

/** AppendEntries: entries follow (index, logTerm); commit is the leader's commit. */
export interface MsgApp extends MessageBase {
  type: 'app';
  /** Index of the entry just before `entries` (prevLogIndex). */
  index: number;
  /** Term of the entry at `index` (prevLogTerm). */
  logTerm: number;
  entries: Entry[];
  commit: number;
}

/**
 * Reply to MsgApp (and to a MsgSnap, and to a stale leader with a lower term).
 * Accepted: `index` is the last index now known to match the leader.
 * Rejected: `index` is the rejected prevLogIndex and `rejectHint` the follower's last index.
 */
export interface MsgAppResp extends MessageBase {
  type: 'appResp';
  index: number;
  reject: boolean;
  rejectHint: number;
}

/** RequestVote and its PreVote twin (thesis §9.6). */
export interface MsgVote extends MessageBase {
  type: 'vote' | 'preVote';
  /** Candidate's last log index and its term (election restriction, paper §5.4.1). */
  index: number;
  logTerm: number;
  /** Application-reported fitness of the candidate (the PostgreSQL LSN). */
  fitness: bigint;
  /** Sent because of TimeoutNow: voters skip their leader-stickiness guard. */
  transfer: boolean;
}

export interface MsgVoteResp extends MessageBase {
  type: 'voteResp' | 'preVoteResp';
  reject: boolean;
}

/** Heartbeat; `round` numbers the leader's lease rounds, echoed in the response. */
export interface MsgHeartbeat extends MessageBase {
  type: 'heartbeat';
  /** min(leader commit, follower's known match): never past what the follower matched. */
  commit: number;
  round: number;
}

export interface MsgHeartbeatResp extends MessageBase {
  type: 'heartbeatResp';
  round: number;
}

/** InstallSnapshot. */
export interface MsgSnap extends MessageBase {
  type: 'snap';
  snapshot: Snapshot;
}

/** Leadership transfer: the receiver campaigns at once (thesis §3.10). */
export interface MsgTimeoutNow extends MessageBase {
  type: 'timeoutNow';
}

export type Message =
  | MsgApp
  | MsgAppResp
  | MsgVote
  | MsgVoteResp
  | MsgHeartbeat
  | MsgHeartbeatResp
  | MsgSnap
  | MsgTimeoutNow;

export type MessageType = Message['type'];

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

/** Volatile state, reported in a Ready when it changes. */
export interface SoftState {
  role: Role;
  /** Current leader as this node knows it; NONE if unknown. */
  leader: NodeId;
}

/** Work handed to the driver; see the contract at the top of this file. */
export interface Ready {
  softState?: SoftState;
  hardState?: HardState;
  /**
   * Entries to append to durable storage. Stored entries with an index >=
   * entries[0].index are stale (a conflicting suffix) and must be discarded first.
   */
  entries: Entry[];
  /** A snapshot received from the leader: persist it and discard the whole stored log. */
  snapshot?: Snapshot;
  /** Entries to apply, in order; all are durable once this Ready is persisted. */
  committedEntries: Entry[];
  messages: Message[];
  /** True when entries, a snapshot, or the term/vote changed: fsync before sending. */
  mustSync: boolean;
}

/** What the driver recovered from durable storage at boot. */
export interface InitialState {
  hardState: HardState;
  /** Latest durable snapshot, if any; entries then start at snapshot.metadata.index + 1. */
  snapshot?: Snapshot;
  /** Durable log entries, contiguous, in index order. */
  entries: Entry[];
  /** Membership to boot with when there is no snapshot (a fresh cluster). */
  confState: ConfState;
}

/** Seeded randomness passed in (election timeout jitter). */
export interface Rng {
  /** A uniformly distributed integer in [0, maxExclusive). */
  intBelow(maxExclusive: number): number;
}

/** Local monotonic time in milliseconds (never a wall clock). */
export type Clock = () => number;

export interface Config {
  id: NodeId;
  /** Local time one tick stands for; converts tick counts into lease milliseconds. */
  tickMs: number;
  /** Leader heartbeat (and lease round) interval, in ticks. */
  heartbeatTicks: number;
  /** Minimum election timeout E in ticks; the actual timeout is drawn from [E, 2E). */
  electionTicks: number;
  /** Bound ρ on clock rate error between any two nodes (0.01 = 1 %). */
  maxClockDrift: number;
  /** Lease length L; must satisfy L <= E(1−ρ)/(1+ρ) with E = electionTicks·tickMs. */
  leaseMs: number;
  /** δ: leaseValidUntil() ends this much before the lease itself (fencing latency). */
  leaseStopMarginMs: number;
  /** Max unacknowledged MsgApp per follower in the replicate state (default 64). */
  maxInflightMsgs?: number;
  /** Max entries per MsgApp (default 64). */
  maxEntriesPerMsg?: number;
  /** Max entries the leader holds uncommitted before refusing proposals (default 1024). */
  maxUncommittedEntries?: number;
  /**
   * Vote restriction: may this node vote for `candidate` reporting `candidateFitness`?
   * Default: candidateFitness >= this node's own fitness (see setFitness).
   */
  voteCheck?: (candidate: NodeId, candidateFitness: bigint) => boolean;
}

export type ProposeRefusal =
  | 'notLeader'
  | 'leaderTransferInProgress'
  | 'uncommittedLimit'
  | 'confChangeInProgress'
  | 'leaderNoopNotCommitted'
  | 'invalidConfChange';

export type ProposeResult = { ok: true; index: number; term: number } | { ok: false; reason: ProposeRefusal };

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export interface ProgressStatus {
  match: number;
  next: number;
  state: ProgressState;
  recentActive: boolean;
  inflight: number;
}

export interface Status {
  id: NodeId;
  term: number;
  vote: NodeId;
  role: Role;
  leader: NodeId;
  commit: number;
  applied: number;
  lastIndex: number;
  /** First index still in the log (snapshot index + 1). */
  firstIndex: number;
  confState: ConfState;
  /** Leader only: per-member replication progress (self included). */
  progress: Record<NodeId, ProgressStatus>;
  leadTransferee: NodeId;
  leaseValidUntilMs: number | null;
  fitness: bigint;
  campaignAllowed: boolean;
}
