// The drill history: what every client asked for and what it was told, with
// timestamps, plus the faults the drill injected. The checker judges it against
// what the final primary holds; nothing here does IO.

/** One logical write; its attempts (retries with the same id) share `opId`. */
export type HistoryEvent =
  | { type: 'invoke'; opId: string; client: number; attempt: number; atMs: number; keyed: boolean }
  /** The server acknowledged the write; `term` is what the row it wrote says served it. */
  | { type: 'ok'; opId: string; client: number; attempt: number; atMs: number; term: number | null }
  /** A definite failure: the server said nothing was committed. */
  | {
      type: 'fail';
      opId: string;
      client: number;
      attempt: number;
      atMs: number;
      sqlstate: string;
      message: string;
    }
  /** The outcome is unknown to the client (connection lost, 08007, timeout). */
  | {
      type: 'unknown';
      opId: string;
      client: number;
      attempt: number;
      atMs: number;
      sqlstate: string | null;
      message: string;
    }
  /** A fault the drill injected; `expectsNewTerm` when it should cause a failover. */
  | { type: 'fault'; round: number; name: string; atMs: number; expectsNewTerm: boolean; detail?: string }
  /** The drill healed the fault (restarted, resumed, reconnected). */
  | { type: 'heal'; round: number; name: string; atMs: number };

export type OperationEvent = Extract<HistoryEvent, { opId: string }>;
export type FaultEvent = Extract<HistoryEvent, { type: 'fault' }>;

/** What the final primary holds for one write id: how many rows and the term each row recorded. */
export interface StoredWrite {
  opId: string;
  terms: Array<number | null>;
}

/**
 * SQLSTATEs after which the client cannot know whether its write committed.
 * Class 08 is a lost connection; 57P01/57P02 end the session, possibly mid-commit.
 */
export function isUnknownOutcome(sqlstate: string | null): boolean {
  if (sqlstate === null) return true;
  return sqlstate.startsWith('08') || sqlstate === '57P01' || sqlstate === '57P02';
}

/** Collects events in order; the clock is injected so tests and replays are deterministic. */
export class HistoryRecorder {
  private readonly list: HistoryEvent[] = [];

  constructor(
    private readonly nowMs: () => number,
    private readonly maxEvents = 5_000_000,
  ) {}

  record(event: DistributiveOmit<HistoryEvent, 'atMs'>): HistoryEvent {
    if (this.list.length >= this.maxEvents) {
      throw new Error(`drill history is full (${this.maxEvents} events): run fewer rounds or clients`);
    }
    const full = { ...event, atMs: this.nowMs() } as HistoryEvent;
    this.list.push(full);
    return full;
  }

  events(): readonly HistoryEvent[] {
    return this.list;
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
