// Extension points the client session calls on its data path. The exactly-once
// layer (src/exactly-once/) implements them; the proxy itself ships NoopHooks.
//
// Ordering contract: the session processes client requests one at a time. While a
// hook's `onRequest` promise is pending, the session reads nothing more from the
// client and keeps the current backend attached (it is never released to the pool
// or swapped mid-request), so a hook may run several steps on one backend.
import type { Endpoint } from '../cluster/view.ts';
import type { PinKind } from './session-pins.ts';

export type TransactionStatus = 'I' | 'T' | 'E';

/** What a hook may know about the client session. Read-only. */
export interface SessionInfo {
  /** Proxy-wide unique id; also the pid in the BackendKeyData the proxy gave the client. */
  readonly clientId: number;
  readonly user: string;
  readonly database: string;
  /** Startup parameters the client sent (application_name, options, ...). */
  readonly startupParameters: ReadonlyMap<string, string>;
  /** Which listener the client came in on. */
  readonly port: 'write' | 'read';
  /** Transaction status from the last ReadyForQuery the client was sent. */
  readonly transactionStatus: TransactionStatus;
  /** State only the current backend process holds (temp tables, LISTEN, ...); empty when the session can move. */
  readonly pins: readonly PinKind[];
}

/** One frontend message as received: its type byte and the whole raw message (type + length + body). */
export interface FrontendMessage {
  readonly type: number;
  readonly raw: Buffer;
}

export type ClientRequest =
  /** A simple-protocol Query ('Q'); `sql` is its text. */
  | { readonly kind: 'query'; readonly sql: string; readonly message: FrontendMessage }
  /**
   * An extended-protocol batch: the messages up to and including the Sync ('S') or
   * Flush ('H') that ended it. `streamedBefore` is true when a message of this batch
   * was too big to buffer and has already been streamed to the backend (it is then
   * not in `messages`).
   */
  | {
      readonly kind: 'batch';
      readonly messages: readonly FrontendMessage[];
      readonly endsWith: 'sync' | 'flush';
      readonly streamedBefore: boolean;
    };

/** A decoded result of a proxy-owned query (text format). */
export interface OwnedQueryResult {
  /** CommandComplete tag of the last statement, e.g. `INSERT 0 1`; null when none completed. */
  readonly commandTag: string | null;
  readonly columns: readonly string[];
  readonly rows: readonly (readonly (string | null)[])[];
}

/**
 * Sees each backend message answering forwarded client messages before the client
 * does. Return the message to forward it unchanged, another buffer (one or more
 * whole messages) to replace it, or null to drop it.
 */
export type ResponseFilter = (type: number, message: Buffer) => Buffer | null;

/** The backend serving the current request. */
export interface BackendChannel {
  /** The fencing term this connection was opened in. */
  readonly term: number;
  readonly endpoint: Endpoint;
  /** PostgreSQL's own pid of this backend. */
  readonly backendPid: number;
  /**
   * Runs a proxy-owned statement on this backend; its responses never reach the
   * client. Between client batches it uses the simple protocol (`params` must then be
   * empty); after `forward` of messages not ended by Sync it uses the extended protocol
   * with Flush, inside the client's implicit transaction. Rejects with an
   * `OwnedQueryError` carrying the SQLSTATE when PostgreSQL answers an error, and with
   * `BackendLostError` when the connection dies.
   */
  query(sql: string, params?: readonly (string | null)[]): Promise<OwnedQueryResult>;
  /**
   * Forwards client-protocol messages (whole, raw) whose responses go to the client
   * (through `filter` when given). Resolves once every response to them has arrived
   * (for a batch not ended by Sync: once each message is answered or skipped after an
   * error; end such a batch with a Flush ('H'), or PostgreSQL keeps its answers
   * buffered). Rejects with `BackendLostError` when the connection dies first.
   * test/proxy/hooks.pg.test.ts shows the fence before COMMIT and before an implicit Sync.
   */
  forward(messages: readonly Buffer[], filter?: ResponseFilter): Promise<void>;
}

export interface RequestContext {
  readonly session: SessionInfo;
  /**
   * The backend for this request: the one already attached, else one acquired now
   * (this is where a request holds while there is no writable primary; it rejects
   * with a `HoldError` past the hold bound).
   */
  backend(): Promise<BackendChannel>;
  /** Sends whole backend-protocol messages to the client, in order after any responses still pending. */
  sendToClient(bytes: Buffer): void;
  /**
   * Ends the session: the client gets this one FATAL and the connection closes (answers
   * still owed by the backend are dropped). The hook then returns true: nothing else is sent.
   */
  close(code: string, message: string, detail?: string): void;
}

/** What the client is told about a request that was in flight when its backend was lost. */
export type LossVerdict =
  /** 40001 "aborted by failover; nothing committed"; in a transaction the session stays in E until ROLLBACK. */
  | { readonly action: 'abort' }
  /** 08007: the outcome cannot be determined; the connection closes. */
  | { readonly action: 'unknown' }
  /** Send these whole backend messages (e.g. CommandComplete + ReadyForQuery 'I') as the outcome. */
  | { readonly action: 'respond'; readonly bytes: Buffer; readonly transactionStatus: TransactionStatus }
  /** FATAL with this SQLSTATE (57P01 for session state that cannot move) and close. */
  | { readonly action: 'fatal'; readonly sqlstate: string; readonly message: string };

export interface BackendLossContext {
  readonly session: SessionInfo;
  /** Term of the lost backend connection. */
  readonly lostTerm: number;
  /** Why it was lost: a newer term fenced it, or the connection failed. */
  readonly reason: 'term-change' | 'connection-lost';
  /** True when the backend owed the client responses (a request was in flight). */
  readonly inFlight: boolean;
  /** The last client request forwarded on the default path, if any. */
  readonly lastRequest: ClientRequest | null;
  /** A backend on the current primary (holds while there is none), to resolve the outcome. */
  newBackend(): Promise<BackendChannel>;
}

export interface ProxyHooks {
  /**
   * Called for each client request before the proxy forwards it. Return true when the
   * hook handled it completely (it forwarded, rewrote or answered it through `ctx`);
   * false to let the proxy forward it unchanged.
   */
  onRequest(ctx: RequestContext, request: ClientRequest): Promise<boolean>;
  /**
   * Called when a backend is lost outside `onRequest` (the default forwarding path)
   * while the session was not idle at a transaction boundary.
   */
  onBackendLost(ctx: BackendLossContext): Promise<LossVerdict>;
  /** False while a COMMIT waits on synchronous replication: the proxy then drops the CancelRequest. */
  canForwardCancel(session: SessionInfo): boolean;
  /** True when `onRequest` must see requests; false lets the session skip it (faster). */
  readonly interceptsRequests: boolean;
}

/** The proxy without exactly-once: forwards everything; a lost in-flight request has an unknown outcome. */
export class NoopHooks implements ProxyHooks {
  readonly interceptsRequests: boolean = false;

  async onRequest(_ctx: RequestContext, _request: ClientRequest): Promise<boolean> {
    return false;
  }

  async onBackendLost(ctx: BackendLossContext): Promise<LossVerdict> {
    // Nothing can have committed unless a statement that commits was in flight: an
    // autocommit statement, or one that may contain COMMIT/END/PREPARE. Say so honestly.
    if (!ctx.inFlight) return { action: 'abort' };
    const request = ctx.lastRequest;
    const insideTransaction = ctx.session.transactionStatus !== 'I';
    if (insideTransaction && request?.kind === 'query' && !mayCommit(request.sql)) return { action: 'abort' };
    return { action: 'unknown' };
  }

  canForwardCancel(): boolean {
    return true;
  }
}

function mayCommit(sql: string): boolean {
  return /\b(commit|end|prepare)\b/i.test(sql);
}

/** The backend connection died (or was fenced) before the operation completed. */
export class BackendLostError extends Error {
  constructor(readonly reason: 'term-change' | 'connection-lost') {
    super(`backend connection lost (${reason})`);
    this.name = 'BackendLostError';
  }
}

/** PostgreSQL answered a proxy-owned query with an error. */
export class OwnedQueryError extends Error {
  constructor(
    readonly sqlstate: string,
    message: string,
  ) {
    super(message);
    this.name = 'OwnedQueryError';
  }
}

/** A request could not get a backend within the hold bound (57P03) or was cancelled while held (57014). */
export class HoldError extends Error {
  constructor(
    readonly sqlstate: '57P03' | '57014',
    message: string,
  ) {
    super(message);
    this.name = 'HoldError';
  }
}
