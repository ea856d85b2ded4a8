// One connection from the proxy to a PostgreSQL server: login with the proxy's own
// credentials, then a byte pump that routes each answer to its owner (the attached
// client, or a proxy-owned query) through the ResponseTracker. Stamped with the
// fencing term it was opened in; a connection of an older term is closed, never reused.
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Endpoint } from '../cluster/view.ts';
import type { Logger } from '../log.ts';
import {
  buildParameterStatus,
  decodeAuthentication,
  decodeBackendKeyData,
  decodeErrorResponse,
  decodeParameterStatus,
  decodeReadyForQuery,
  type ErrorFields,
} from '../wire/backend.ts';
import { type Frame, FrameKind, frameBytes, type MessageFrame, MessageFramer } from '../wire/framer.ts';
import { TERMINATE } from '../wire/frontend.ts';
import {
  BackendMessage,
  FrontendMessage,
  MAX_PROTOCOL_MESSAGE_BYTES,
  TransactionStatus,
} from '../wire/protocol.ts';
import { buildCancelRequest, buildStartupMessage } from '../wire/startup.ts';
import { BackendAuthenticator } from './auth/client.ts';
import { BackendLostError, type OwnedQueryResult, type TransactionStatus as TxStatus } from './hooks.ts';
import { extendedQueryMessages, OwnedQueryCollector, simpleQueryMessages } from './owned-query.ts';
import { ResponseTracker } from './response-tracker.ts';

/** Opens a byte stream to a PostgreSQL server; resolves once connected. Tests inject fakes. */
export type BackendConnector = (endpoint: Endpoint) => Promise<Duplex>;

/** Streams DataRow and CopyData messages at least this big instead of assembling them. */
export const STREAM_THRESHOLD_BYTES = 256 * 1024;

export const tcpConnector: BackendConnector = (endpoint) =>
  new Promise((resolve, reject) => {
    const socket = net.connect({ host: endpoint.host, port: endpoint.port });
    socket.setNoDelay(true);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });

export interface BackendCredentials {
  /** Role the proxy logs in as; default: the client's user. */
  user?: string;
  password?: string;
}

export interface BackendLoginOptions {
  connector: BackendConnector;
  endpoint: Endpoint;
  term: number;
  database: string;
  user: string;
  password: string | undefined;
  timeoutMs: number;
  logger: Logger;
}

/** The server refused the login (bad database, role, password, too many connections...). */
export class BackendLoginError extends Error {
  constructor(readonly fields: ErrorFields) {
    super(`PostgreSQL refused the proxy's login: ${fields.message}`);
    this.name = 'BackendLoginError';
  }
}

/** Where answers meant for the client go while a client is attached. */
export interface BackendSink {
  /** Writes whole messages (or streamed pieces) to the client; false asks the backend to pause. */
  deliver(bytes: Buffer): boolean;
  /** Calls `resume` once the client has drained what `deliver` buffered. */
  whenDrained(resume: () => void): void;
  /** A ReadyForQuery went to the client (after delivery). */
  onReadyForQuery(status: TxStatus): void;
  /**
   * The connection died or was fenced while attached. `owedReadyForQuery` counts the
   * client's requests left unanswered; `batchOpen` says extended messages were sent
   * without their Sync.
   */
  onLost(reason: 'term-change' | 'connection-lost', owedReadyForQuery: number, batchOpen: boolean): void;
  /** Brackets the delivery of one received chunk, so many small messages leave in one write. */
  cork(): void;
  uncork(): void;
}

const STATUS_BY_BYTE: Record<number, TxStatus> = {
  [TransactionStatus.Idle]: 'I',
  [TransactionStatus.InTransaction]: 'T',
  [TransactionStatus.Failed]: 'E',
};

function isStreamable(type: number): boolean {
  return type === BackendMessage.DataRow || type === BackendMessage.CopyData;
}

/** Frontend messages that open (or continue) an extended-protocol batch, which only Sync ends. */
const EXTENDED_TYPES = new Set<number>([
  FrontendMessage.Parse,
  FrontendMessage.Bind,
  FrontendMessage.Describe,
  FrontendMessage.Execute,
  FrontendMessage.Close,
  FrontendMessage.Flush,
]);

let nextBackendId = 1;

export class BackendConnection {
  readonly id = nextBackendId++;
  /** ParameterStatus values as PostgreSQL last reported them. */
  readonly parameters = new Map<string, string>();
  /** Settings the proxy applied (name → value SQL), to diff against a client's. */
  readonly settings = new Map<string, string>();
  /** Named prepared statements on this connection: name → the Parse message that made it. */
  readonly prepared = new Map<string, Buffer>();
  readonly tracker = new ResponseTracker();
  processId = 0;
  secretKey = 0;
  transactionStatus: TxStatus = 'I';
  /** Whether the last CommandComplete was a ROLLBACK (also the tag of COMMIT in a failed block). */
  lastCompletion: 'ROLLBACK' | 'OTHER' = 'OTHER';
  /** ErrorResponses received so far (did anything fail since a boundary? see SessionPins). */
  errorResponses = 0;
  /** Extended-protocol messages were sent since the last Sync. */
  inBatch = false;
  /**
   * A streamed frontend message is written only in part: PostgreSQL would read whatever is
   * written next as the rest of its body, so nobody else may use this connection.
   */
  midMessage = false;
  closed = false;
  /** When it last went back to the pool (for idle timeouts). */
  idleSince = 0;

  private readonly framer = new MessageFramer({
    maxMessageBytes: MAX_PROTOCOL_MESSAGE_BYTES,
    streamThresholdBytes: STREAM_THRESHOLD_BYTES,
    streamable: isStreamable,
  });
  private sink: BackendSink | null = null;
  /** Route of the message being streamed: to the client, or to a proxy-owned query (dropped). */
  private streamToClient = true;
  private paused = false;
  private login: ((frame: Frame) => void) | null = null;
  private drainWaiters: (() => void)[] = [];
  private readonly closeListeners: (() => void)[] = [];
  private greeting: Buffer | null = null;

  private constructor(
    private readonly socket: Duplex,
    readonly endpoint: Endpoint,
    readonly term: number,
    readonly database: string,
    readonly user: string,
    private readonly logger: Logger,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => {
      const waiters = this.drainWaiters.splice(0);
      for (const waiter of waiters) waiter();
    });
    socket.on('error', (error) => this.logger.debug('backend socket error', { error: error.message }));
    socket.on('close', () => this.lost('connection-lost'));
  }

  /** Connects and logs in; resolves at the first ReadyForQuery. */
  static async open(options: BackendLoginOptions): Promise<BackendConnection> {
    const connecting = options.connector(options.endpoint);
    const socket = await withTimeout(connecting, options.timeoutMs, () => {
      // A connect that completes after the bound is closed, never leaked.
      connecting.then(
        (late) => late.destroy(),
        () => undefined,
      );
    });
    const backend = new BackendConnection(
      socket,
      options.endpoint,
      options.term,
      options.database,
      options.user,
      options.logger,
    );
    try {
      await withTimeout(backend.logIn(options), options.timeoutMs, () => backend.close('connection-lost'));
    } catch (error) {
      backend.close('connection-lost');
      throw error;
    }
    return backend;
  }

  private logIn(options: BackendLoginOptions): Promise<void> {
    return new Promise((resolve, reject) => {
      const authenticator = new BackendAuthenticator(options.user, options.password);
      const fail = (error: Error) => {
        this.login = null;
        reject(error);
      };
      this.socket.once('close', () => fail(new BackendLostError('connection-lost')));
      this.login = (frame) => {
        if (frame.kind !== FrameKind.Message)
          return fail(new Error('unexpected streamed message during login'));
        switch (frame.type) {
          case BackendMessage.Authentication: {
            let reply: Buffer | null;
            try {
              reply = authenticator.respond(decodeAuthentication(frame));
            } catch (error) {
              return fail(error as Error);
            }
            if (reply !== null) this.socket.write(reply);
            return;
          }
          case BackendMessage.ParameterStatus: {
            const { name, value } = decodeParameterStatus(frame);
            this.parameters.set(name, value);
            return;
          }
          case BackendMessage.BackendKeyData: {
            const key = decodeBackendKeyData(frame);
            this.processId = key.processId;
            this.secretKey = key.secretKey;
            return;
          }
          case BackendMessage.ErrorResponse:
            return fail(new BackendLoginError(decodeErrorResponse(frame)));
          case BackendMessage.ReadyForQuery:
            this.login = null;
            resolve();
            return;
          default:
            // NoticeResponse, NegotiateProtocolVersion: nothing to act on.
            return;
        }
      };
      this.socket.write(
        buildStartupMessage({ user: options.user, database: options.database, client_encoding: 'UTF8' }),
      );
    });
  }

  /** ParameterStatus messages for every reported parameter: what a new client is greeted with. */
  parameterStatusMessages(): Buffer {
    this.greeting ??= Buffer.concat(
      [...this.parameters].map(([name, value]) => buildParameterStatus(name, value)),
    );
    return this.greeting;
  }

  /** Runs `listener` once when the connection closes (at once if it already has). */
  onClose(listener: () => void): void {
    if (this.closed) listener();
    else this.closeListeners.push(listener);
  }

  attach(sink: BackendSink): void {
    if (this.sink !== null) throw new Error(`backend ${this.id} is already attached`);
    this.sink = sink;
  }

  detach(): void {
    this.sink = null;
    if (this.paused) this.resumeReading();
  }

  get attached(): boolean {
    return this.sink !== null;
  }

  /** Idle at a boundary: nothing owed, no batch open, no message half written, outside a transaction. */
  get atBoundary(): boolean {
    return this.tracker.pending === 0 && !this.inBatch && !this.midMessage && this.transactionStatus === 'I';
  }

  /** Sends raw frontend bytes; false when the socket's buffer is full (wait with `drained`). */
  write(bytes: Buffer): boolean {
    if (this.closed) return true;
    return this.socket.write(bytes);
  }

  /** Records what a forwarded whole frontend message of `type` expects, then sends it. */
  send(type: number, bytes: Buffer, owner: Parameters<ResponseTracker['sent']>[1]): boolean {
    this.noteSent(type, owner);
    return this.write(bytes);
  }

  /** Bookkeeping for a frontend message about to be written (for streamed ones: at their start). */
  noteSent(type: number, owner: Parameters<ResponseTracker['sent']>[1]): void {
    if (type === FrontendMessage.Sync) this.inBatch = false;
    else if (EXTENDED_TYPES.has(type)) this.inBatch = true;
    this.tracker.sent(type, owner);
  }

  /** Batches the writes that follow into one (until `uncork`). */
  cork(): void {
    this.socket.cork();
  }

  uncork(): void {
    this.socket.uncork();
  }

  drained(): Promise<void> {
    if (this.closed || !this.socket.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Runs a proxy-owned statement; see BackendChannel.query in hooks.ts. */
  query(sql: string, params: readonly (string | null)[] = []): Promise<OwnedQueryResult> {
    if (this.closed) return Promise.reject(new BackendLostError('connection-lost'));
    const extended = this.inBatch || params.length > 0;
    if (!extended && this.tracker.pending > 0) {
      throw new Error(
        'proxy-owned simple query while answers are still owed: the session must wait for them',
      );
    }
    const { messages, types } = extended ? extendedQueryMessages(sql, params) : simpleQueryMessages(sql);
    const collector = new OwnedQueryCollector(types.length);
    for (const type of types) this.tracker.sent(type, collector);
    if (extended) this.inBatch = true;
    for (const message of messages) this.write(message);
    return collector.result;
  }

  /** Asks PostgreSQL to cancel whatever this connection runs (a separate connection, as the protocol wants). */
  async cancel(connector: BackendConnector): Promise<void> {
    const socket = await connector(this.endpoint);
    await new Promise<void>((resolve) => {
      socket.on('error', () => resolve());
      socket.on('close', () => resolve());
      socket.end(buildCancelRequest(this.processId, this.secretKey));
    });
  }

  close(reason: 'term-change' | 'connection-lost'): void {
    if (this.closed) return;
    if (this.tracker.pending === 0 && !this.socket.destroyed) this.socket.end(TERMINATE);
    this.lost(reason);
    this.socket.destroy();
  }

  private lost(reason: 'term-change' | 'connection-lost'): void {
    if (this.closed) return;
    this.closed = true;
    const sink = this.sink;
    this.sink = null;
    const owed = this.tracker.owedReadyForQuery();
    const batchOpen = this.inBatch;
    this.tracker.abandon();
    const waiters = this.drainWaiters.splice(0);
    for (const waiter of waiters) waiter();
    sink?.onLost(reason, owed, batchOpen);
    for (const listener of this.closeListeners.splice(0)) listener();
  }

  private resumeReading(): void {
    this.paused = false;
    this.socket.resume();
  }

  private onData(chunk: Buffer): void {
    this.framer.push(chunk);
    const sink = this.sink;
    sink?.cork();
    try {
      for (let frame = this.framer.next(); frame !== null; frame = this.framer.next()) {
        if (this.closed) return;
        if (this.login !== null) this.login(frame);
        else this.route(frame);
      }
    } catch (error) {
      this.logger.warn('backend broke the protocol; closing it', { error: (error as Error).message });
      this.close('connection-lost');
      return;
    } finally {
      sink?.uncork();
    }
    if (this.paused) this.socket.pause();
  }

  private deliver(bytes: Buffer): void {
    const sink = this.sink;
    if (sink === null) return;
    if (!sink.deliver(bytes) && !this.paused) {
      this.paused = true;
      this.socket.pause();
      sink.whenDrained(() => {
        if (this.paused && !this.closed) this.resumeReading();
      });
    }
  }

  private route(frame: Frame): void {
    if (frame.kind !== FrameKind.Message) {
      if (frame.kind === FrameKind.StreamStart) {
        this.streamToClient = this.tracker.route(frame.type) === 'client';
        if (!this.streamToClient) (this.tracker.headOwner() as OwnedQueryCollector | null)?.oversized?.();
      }
      if (this.streamToClient) this.deliver(frame.bytes);
      return;
    }
    const type = frame.type;
    const bytes = frameBytes(frame);
    if (type === BackendMessage.ErrorResponse && this.serverGoingAway(frame)) return;
    if (type === BackendMessage.ParameterStatus) {
      const { name, value } = decodeParameterStatus(frame);
      this.parameters.set(name, value);
      this.greeting = null;
    } else if (type === BackendMessage.CommandComplete) {
      // Only COMMIT vs ROLLBACK matters (does a transaction block's SET last?); no full decode.
      this.lastCompletion =
        bytes[5] === 0x52 && bytes.toString('latin1', 5, bytes.length - 1) === 'ROLLBACK'
          ? 'ROLLBACK'
          : 'OTHER';
    } else if (type === BackendMessage.ReadyForQuery) {
      this.transactionStatus = STATUS_BY_BYTE[decodeReadyForQuery(frame)]!;
    } else if (type === BackendMessage.ErrorResponse) {
      this.errorResponses += 1;
    }
    const owner = this.tracker.headOwner();
    if (this.tracker.route(type) === 'client') {
      if (this.sink === null) {
        this.unattachedMessage(type, bytes);
      } else {
        const out = owner?.filter !== undefined && owner.toClient ? owner.filter(type, bytes) : bytes;
        if (out !== null) this.deliver(out);
      }
    }
    this.tracker.answered(type, bytes);
    const due = this.tracker.takeDue();
    for (const synthesized of due) this.deliver(synthesized);
    if (type === BackendMessage.ReadyForQuery && owner?.toClient)
      this.sink?.onReadyForQuery(this.transactionStatus);
  }

  /**
   * A FATAL that says the server is going away (shutdown, crash, postmaster death) ends this
   * connection: it is closed as lost and the FATAL is never forwarded, so an idle session
   * moves to the primary on its next request, and a request in flight gets the backend-loss
   * verdict (hooks.onBackendLost) instead of PostgreSQL's message.
   */
  private serverGoingAway(frame: MessageFrame): boolean {
    const fields = decodeErrorResponse(frame);
    const severity = fields.severityNonLocalized ?? fields.severity;
    if ((severity !== 'FATAL' && severity !== 'PANIC') || !SERVER_GOING_AWAY.has(fields.code)) return false;
    this.logger.info('PostgreSQL is going away; closing the backend as lost', {
      code: fields.code,
      message: fields.message,
    });
    this.close('connection-lost');
    return true;
  }

  /** A message for nobody while pooled: a server-side FATAL means this connection is finished. */
  private unattachedMessage(type: number, bytes: Buffer): void {
    if (type === BackendMessage.ErrorResponse) {
      const fields = decodeErrorResponse({ buffer: bytes, bodyStart: 5, end: bytes.length });
      this.logger.info('idle backend got an error; closing it', {
        code: fields.code,
        message: fields.message,
      });
      this.close('connection-lost');
    }
  }
}

/** SQLSTATEs of a FATAL that means the server itself is going away: admin_shutdown, crash_shutdown, cannot_connect_now. */
export const SERVER_GOING_AWAY: ReadonlySet<string> = new Set(['57P01', '57P02', '57P03']);

async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, onTimeout: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new Error(`PostgreSQL did not complete the login within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
