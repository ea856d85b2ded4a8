// The response side of a wrapped request. The proxy sends the client's statement
// (or extended batch) between its own prefix (BEGIN, the key claim) and suffix
// (the commit fence), in one round trip; this filter sorts the answers: the
// proxy's are dropped (the fence row is captured), the client's are held (up to a
// bound, then streamed) and, for keyed requests, copied for the ledger. The final
// ReadyForQuery is always dropped: the hook sends the client its own once the
// outcome is known. Pure: no IO.
import { BackendMessage } from '../wire/protocol.ts';

export interface WrapPlan {
  /**
   * simple: one Query `prefix; client statements; fence`, sorted by counting CommandCompletes.
   * extended: up to three segments, each ending in ReadyForQuery: a prefix Query, the
   * client's batch (ending in its Sync), and a fence Query.
   */
  protocol: 'simple' | 'extended';
  /** simple: proxy statements before the client's (each ends in a CommandComplete). extended: 1 with a prefix Query. */
  prefix: number;
  /** simple: client statements; extended: client messages that get a completion (P, B, D, E, C). */
  clientAnswers: number;
  /** Whether the fence query follows the client's part. */
  fence: boolean;
  /** Client answers held back up to this many bytes, so a lost request can still get a clean outcome. */
  holdLimitBytes: number;
  /** Keyed requests: copy RowDescription, DataRows and the tag, up to this many bytes; null: no capture. */
  captureLimitBytes: number | null;
}

type Phase = 'prefix' | 'client' | 'fence' | 'await-ready' | 'drain' | 'done';

/** SQLSTATEs of the proxy's own prefix that the hook handles itself. */
const OWN_PREFIX_ERRORS = new Set(['PW900', '3F000', '42883', '42P01']);

export class WrapFilter {
  private phase: Phase;
  private prefixLeft: number;
  private clientLeft: number;
  private fenceLeft: number;
  /** extended: ReadyForQuery messages still to come (one per segment). */
  private readyLeft: number;
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** The client's answers exceeded the hold bound and went out as they came. */
  streamed = false;
  /** SQLSTATE of an error in the proxy's prefix (claim conflict, missing ledger, ...), if any. */
  prefixError: string | null = null;
  /** The client's statement failed; its ErrorResponse went to the client. */
  clientFailed = false;
  /** The fence itself failed (never expected). */
  fenceFailed = false;
  /** Text values of the fence row: [xid or null, insert LSN]. */
  fenceRow: Array<string | null> | null = null;
  /** Transaction status of the final ReadyForQuery; null until it arrived. */
  finalStatus: 'I' | 'T' | 'E' | null = null;
  rowDescription: Buffer | null = null;
  private readonly dataRows: Buffer[] = [];
  private capturedBytes = 0;
  captureTruncated = false;
  commandTag: string | null = null;
  /** Answers of the client's part that completed (to synthesize the rest after a loss). */
  clientCompleted = 0;

  constructor(private readonly plan: WrapPlan) {
    this.phase = plan.prefix > 0 ? 'prefix' : 'client';
    this.prefixLeft = plan.prefix;
    this.clientLeft = plan.clientAnswers;
    this.fenceLeft = plan.fence ? 1 : 0;
    this.readyLeft = (plan.prefix > 0 ? 1 : 0) + 1 + (plan.fence ? 1 : 0);
    if (this.phase === 'client' && this.clientLeft === 0 && plan.protocol === 'simple') {
      this.phase = this.fenceLeft > 0 ? 'fence' : 'await-ready';
    }
  }

  get done(): boolean {
    return this.phase === 'done';
  }

  /** The held client answers, in order; empties the hold. */
  takeHeld(): Buffer {
    const bytes = Buffer.concat(this.held);
    this.held = [];
    this.heldBytes = 0;
    return bytes;
  }

  /** The held client answers, in order, leaving them held (for a retry after a lost COMMIT). */
  peekHeld(): Buffer {
    return Buffer.concat(this.held);
  }

  capturedRows(): Buffer | null {
    return this.dataRows.length === 0 ? null : Buffer.concat(this.dataRows);
  }

  /** A `ResponseFilter`: what of this backend message goes to the client now. */
  readonly filter = (type: number, message: Buffer): Buffer | null => {
    if (isAsync(type)) return message;
    if (type === BackendMessage.ReadyForQuery) return this.onReady(message);
    switch (this.phase) {
      case 'prefix':
        return this.onPrefix(type, message);
      case 'client':
        return this.onClient(type, message);
      case 'fence':
        return this.onFence(type, message);
      default:
        return null;
    }
  };

  private onReady(message: Buffer): null {
    const status = String.fromCharCode(message[5]!) as 'I' | 'T' | 'E';
    if (this.plan.protocol === 'simple') {
      this.finalStatus = status;
      this.phase = 'done';
      return null;
    }
    this.readyLeft--;
    if (this.readyLeft === 0) {
      this.finalStatus = status;
      this.phase = 'done';
    } else if (this.phase === 'prefix') {
      this.phase = this.prefixError === null ? 'client' : 'drain';
    } else if (this.phase === 'client' || this.phase === 'await-ready') {
      // The client's batch ended with its Sync; the fence Query follows.
      this.phase = 'fence';
    }
    return null;
  }

  private afterPrefix(): Phase {
    if (this.clientLeft > 0) return 'client';
    return this.fenceLeft > 0 ? 'fence' : 'await-ready';
  }

  private onPrefix(type: number, message: Buffer): Buffer | null {
    if (type === BackendMessage.ErrorResponse) {
      this.prefixError = sqlstateOf(message);
      if (this.plan.protocol === 'simple') this.phase = 'drain';
      // Our own failures stay with the proxy; anything else (a syntax error in the
      // client's text fails the whole Query before BEGIN runs) is the client's to see.
      return OWN_PREFIX_ERRORS.has(this.prefixError) ? null : message;
    }
    if (this.plan.protocol === 'simple' && type === BackendMessage.CommandComplete) {
      this.prefixLeft--;
      if (this.prefixLeft === 0) this.phase = this.afterPrefix();
    }
    return null;
  }

  private onClient(type: number, message: Buffer): Buffer | null {
    if (type === BackendMessage.ErrorResponse) {
      this.clientFailed = true;
      this.phase = 'drain';
      return this.toClient(message);
    }
    this.capture(type, message);
    if (this.completesClientAnswer(type)) {
      this.clientCompleted++;
      this.clientLeft--;
      if (this.clientLeft === 0 && this.plan.protocol === 'simple') {
        this.phase = this.fenceLeft > 0 ? 'fence' : 'await-ready';
      }
    }
    return this.toClient(message);
  }

  private onFence(type: number, message: Buffer): null {
    if (type === BackendMessage.ErrorResponse) {
      this.fenceFailed = true;
      this.phase = 'drain';
      return null;
    }
    if (type === BackendMessage.DataRow) this.fenceRow = decodeTextRow(message);
    if (type === BackendMessage.CommandComplete) {
      this.fenceLeft--;
      if (this.fenceLeft === 0) this.phase = 'await-ready';
    }
    return null;
  }

  private completesClientAnswer(type: number): boolean {
    if (this.plan.protocol === 'simple') {
      return type === BackendMessage.CommandComplete || type === BackendMessage.EmptyQueryResponse;
    }
    return isExtendedCompletion(type);
  }

  private capture(type: number, message: Buffer): void {
    const limit = this.plan.captureLimitBytes;
    if (limit === null) return;
    if (type === BackendMessage.RowDescription) this.rowDescription = Buffer.from(message);
    else if (type === BackendMessage.CommandComplete)
      this.commandTag = message.toString('utf8', 5, message.length - 1);
    else if (type === BackendMessage.DataRow && !this.captureTruncated) {
      if (this.capturedBytes + message.length > limit) {
        this.captureTruncated = true;
        this.dataRows.length = 0;
      } else {
        this.capturedBytes += message.length;
        this.dataRows.push(Buffer.from(message));
      }
    }
  }

  private toClient(message: Buffer): Buffer | null {
    if (this.streamed) return message;
    if (this.heldBytes + message.length <= this.plan.holdLimitBytes) {
      this.held.push(Buffer.from(message));
      this.heldBytes += message.length;
      return null;
    }
    this.streamed = true;
    const out = Buffer.concat([...this.held, message]);
    this.held = [];
    this.heldBytes = 0;
    return out;
  }
}

function isAsync(type: number): boolean {
  return (
    type === BackendMessage.NoticeResponse ||
    type === BackendMessage.NotificationResponse ||
    type === BackendMessage.ParameterStatus
  );
}

function isExtendedCompletion(type: number): boolean {
  switch (type) {
    case BackendMessage.ParseComplete:
    case BackendMessage.BindComplete:
    case BackendMessage.CloseComplete:
    case BackendMessage.NoData:
    case BackendMessage.RowDescription:
    case BackendMessage.CommandComplete:
    case BackendMessage.EmptyQueryResponse:
    case BackendMessage.PortalSuspended:
      return true;
    default:
      return false;
  }
}

/** The 'C' (SQLSTATE) field of an ErrorResponse. */
export function sqlstateOf(message: Buffer): string {
  let i = 5;
  while (i < message.length && message[i] !== 0) {
    const code = message[i]!;
    const end = message.indexOf(0, i + 1);
    if (end === -1) break;
    if (code === 0x43) return message.toString('utf8', i + 1, end);
    i = end + 1;
  }
  return 'XX000';
}

/** DataRow values as UTF-8 text (the fence selects text columns). */
export function decodeTextRow(message: Buffer): Array<string | null> {
  const count = message.readInt16BE(5);
  const values: Array<string | null> = [];
  let offset = 7;
  for (let i = 0; i < count; i++) {
    const length = message.readInt32BE(offset);
    offset += 4;
    if (length < 0) values.push(null);
    else {
      values.push(message.toString('utf8', offset, offset + length));
      offset += length;
    }
  }
  return values;
}
