// Which backend message answers which frontend message. PostgreSQL answers messages
// strictly in order, so a FIFO of what was sent tells, for every backend message,
// who it belongs to: the client (forward it), the proxy (a proxy-owned query: swallow
// and collect it), or nobody (asynchronous: notices, notifications, parameter status).
// This is what lets the proxy inject its own queries and synthesized answers at the
// right place in a pipelined stream. Pure: no IO.
// @see https://www.postgresql.org/docs/15/protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY
import { BackendMessage, FrontendMessage } from '../wire/protocol.ts';

/** Who gets the answers to one sent message. */
export interface ResponseOwner {
  /** True: the answers go to the client; false: the proxy swallows and collects them. */
  readonly toClient: boolean;
  /** For client-owned answers: rewrites or drops each whole message before the client gets it. */
  readonly filter?: (type: number, message: Buffer) => Buffer | null;
  /** Sees every answer message the owner gets (whole messages only). */
  onMessage?(type: number, message: Buffer): void;
  /** The message is fully answered; `skipped` when an earlier error made PostgreSQL skip it. */
  onDone?(skipped: boolean): void;
}

interface Entry {
  /** The frontend message type sent ('P', 'B', 'D', 'E', 'C', 'S', 'Q', 'F'), or 0 for a synthesized answer. */
  readonly type: number;
  readonly owner: ResponseOwner | null;
  /** For a synthesized answer: the bytes the client gets when its turn comes. */
  readonly bytes: Buffer | null;
}

export const CLIENT_OWNER: ResponseOwner = { toClient: true };

/** Frontend messages that get answers (Flush, CopyData and Terminate get none of their own). */
export function expectsAnswer(type: number): boolean {
  switch (type) {
    case FrontendMessage.Parse:
    case FrontendMessage.Bind:
    case FrontendMessage.Describe:
    case FrontendMessage.Execute:
    case FrontendMessage.Close:
    case FrontendMessage.Sync:
    case FrontendMessage.Query:
    case FrontendMessage.FunctionCall:
      return true;
    default:
      return false;
  }
}

function isExtended(type: number): boolean {
  return (
    type === FrontendMessage.Parse ||
    type === FrontendMessage.Bind ||
    type === FrontendMessage.Describe ||
    type === FrontendMessage.Execute ||
    type === FrontendMessage.Close
  );
}

/** Does backend message `answer` complete frontend message `sent`? */
function completes(sent: number, answer: number): boolean {
  switch (sent) {
    case FrontendMessage.Parse:
      return answer === BackendMessage.ParseComplete;
    case FrontendMessage.Bind:
      return answer === BackendMessage.BindComplete;
    case FrontendMessage.Close:
      return answer === BackendMessage.CloseComplete;
    case FrontendMessage.Describe:
      return answer === BackendMessage.RowDescription || answer === BackendMessage.NoData;
    case FrontendMessage.Execute:
      return (
        answer === BackendMessage.CommandComplete ||
        answer === BackendMessage.EmptyQueryResponse ||
        answer === BackendMessage.PortalSuspended
      );
    default:
      // Sync, Query and FunctionCall end with ReadyForQuery.
      return answer === BackendMessage.ReadyForQuery;
  }
}

function isAsynchronous(type: number): boolean {
  return (
    type === BackendMessage.NotificationResponse ||
    type === BackendMessage.ParameterStatus ||
    type === BackendMessage.NoticeResponse
  );
}

export type Route = 'client' | 'proxy';

export class ResponseTracker {
  private readonly entries: Entry[] = [];
  /** Synthesized bytes that became due; the caller drains them with `takeDue` after each step. */
  private due: Buffer[] = [];

  /** Number of sent messages still owed an answer (synthesized ones included). */
  get pending(): number {
    return this.entries.length;
  }

  /** Answers owed to the client that end in ReadyForQuery (its Query, Sync and FunctionCall messages). */
  owedReadyForQuery(): number {
    let owed = 0;
    for (const entry of this.entries) {
      if (entry.owner?.toClient && completes(entry.type, BackendMessage.ReadyForQuery)) owed += 1;
    }
    return owed;
  }

  /** Records a sent frontend message of `type` (no-op for types that get no answer). */
  sent(type: number, owner: ResponseOwner): void {
    if (!expectsAnswer(type)) return;
    this.entries.push({ type, owner, bytes: null });
  }

  /** Queues bytes for the client after everything already pending; due at once when nothing is. */
  synthesize(bytes: Buffer): void {
    if (this.entries.length === 0) this.due.push(bytes);
    else this.entries.push({ type: 0, owner: null, bytes });
  }

  /** Synthesized bytes now due, in order; empties the list. */
  takeDue(): Buffer[] {
    if (this.due.length === 0) return this.due;
    const due = this.due;
    this.due = [];
    return due;
  }

  /**
   * Where a backend message goes. Call before `answered` for the same message. Async
   * messages go to the client, except ParameterStatus and notices raised by the proxy's
   * own queries (the client already has its values).
   */
  route(type: number): Route {
    const head = this.entries[0];
    if (head === undefined || head.owner === null) return 'client';
    if (type === BackendMessage.NotificationResponse) return 'client';
    return head.owner.toClient ? 'client' : 'proxy';
  }

  /** The owner of the next expected answer (null when nothing is pending). */
  headOwner(): ResponseOwner | null {
    return this.entries[0]?.owner ?? null;
  }

  /** Advances past backend message `type` once it has been routed and delivered. */
  answered(type: number, message: Buffer | null): void {
    const head = this.entries[0];
    if (head === undefined || isAsynchronous(type)) return;
    if (head.owner === null) throw new Error('a synthesized answer is at the head: takeDue was not drained');
    if (message !== null) head.owner.onMessage?.(type, message);
    if (type === BackendMessage.ErrorResponse && isExtended(head.type)) {
      this.complete(false);
      // PostgreSQL skips everything up to the next Sync after an error.
      while (this.entries[0] !== undefined && this.entries[0].type !== FrontendMessage.Sync) {
        const skipped = this.entries.shift()!;
        skipped.owner?.onDone?.(true);
      }
      return;
    }
    if (completes(head.type, type)) this.complete(false);
  }

  /** The connection is gone: every pending owner hears `skipped`; synthesized answers are dropped. */
  abandon(): void {
    const entries = this.entries.splice(0);
    this.due = [];
    for (const entry of entries) entry.owner?.onDone?.(true);
  }

  private complete(skipped: boolean): void {
    const done = this.entries.shift()!;
    done.owner!.onDone?.(skipped);
    while (this.entries[0] !== undefined && this.entries[0].owner === null) {
      this.due.push(this.entries.shift()!.bytes!);
    }
  }
}
