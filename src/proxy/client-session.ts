// One client connection: startup (TLS, auth), then the forwarding loop. Bytes are
// forwarded as they are; the session decodes only what it acts on (startup, Query text
// for SET tracking and hooks, Parse/Close names for prepared-statement tracking,
// ReadyForQuery). Backpressure both ways: a full backend socket stops the client
// reader, a full client socket stops the backend reader.
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { ClusterView } from '../cluster/view.ts';
import type { Logger } from '../log.ts';
import {
  AUTHENTICATION_OK,
  buildAuthenticationSASL,
  buildAuthenticationSASLContinue,
  buildAuthenticationSASLFinal,
  buildBackendKeyData,
  buildErrorResponse,
  buildFatalError,
  buildNegotiateProtocolVersion,
  buildReadyForQuery,
  READY_FOR_QUERY_IDLE,
} from '../wire/backend.ts';
import { isProtocolError, ProtocolError } from '../wire/errors.ts';
import { type Frame, FrameKind, frameBytes, type MessageFrame, MessageFramer } from '../wire/framer.ts';
import {
  buildClose,
  decodeBindNames,
  decodeParse,
  decodeQuery,
  decodeSASLInitialResponse,
  decodeSASLResponse,
  isFrontendMessageType,
  SYNC,
} from '../wire/frontend.ts';
import {
  FrontendMessage,
  MAX_PROTOCOL_MESSAGE_BYTES,
  SUPPORTED_PROTOCOL_MINOR,
  TargetKind,
  TransactionStatus as WireStatus,
} from '../wire/protocol.ts';
import { SqlState } from '../wire/sqlstate.ts';
import {
  ENCRYPTION_ACCEPTED,
  ENCRYPTION_REFUSED,
  parseStartupPacket,
  type StartupMessage,
} from '../wire/startup.ts';
import { type AbortedAnswer, AbortedTransaction, abortedByFailoverError } from './aborted-transaction.ts';
import { newScramNonce } from './auth/scram.ts';
import { ScramServer } from './auth/scram-server.ts';
import { type BackendConnection, BackendLoginError, type BackendSink, SERVER_GOING_AWAY } from './backend.ts';
import {
  type BackendChannel,
  BackendLostError,
  type ClientRequest,
  HoldError,
  type FrontendMessage as HookMessage,
  type LossVerdict,
  type OwnedQueryResult,
  type ProxyHooks,
  type RequestContext,
  type ResponseFilter,
  type SessionInfo,
  type TransactionStatus,
} from './hooks.ts';
import { OwnedQueryCollector } from './owned-query.ts';
import { PoolExhaustedError } from './pool.ts';
import { CLIENT_OWNER, expectsAnswer, type ResponseOwner } from './response-tracker.ts';
import { endpointKey, type PortKind, type Route } from './routing.ts';
import type { SessionHost } from './session-host.ts';
import { type PinEffect, type PinKind, pinEffects, pinnedSessionLost, SessionPins } from './session-pins.ts';
import { closeTarget, parseSettingChange, parseStatementName, Settings } from './session-state.ts';

/** Client messages at least this big that span chunks are streamed to the backend, not assembled. */
const CLIENT_STREAM_THRESHOLD_BYTES = 256 * 1024;
/** An extended batch is buffered up to this size (for hooks and one write), then flushed as it is. */
const MAX_BATCH_BYTES = 1024 * 1024;
/** How often a request waiting for an unreachable primary retries the connection. */
const RECONNECT_RETRY_MS = 100;
/** How often a request held in an open transaction re-checks (the lease runs out between topology changes). */
const IN_TRANSACTION_RECHECK_MS = 20;

const STATUS_BYTE: Record<TransactionStatus, WireStatus> = {
  I: WireStatus.Idle,
  T: WireStatus.InTransaction,
  E: WireStatus.Failed,
};

function isClientStreamable(type: number): boolean {
  return type === FrontendMessage.Bind || type === FrontendMessage.CopyData || type === FrontendMessage.Query;
}

function errorMessage(code: string, message: string, detail?: string): Buffer {
  const fields = { severity: 'ERROR', code, message } as Parameters<typeof buildErrorResponse>[0];
  if (detail !== undefined) fields.detail = detail;
  return buildErrorResponse(fields);
}

type Phase = 'startup' | 'auth' | 'login' | 'ready' | 'closed';

export class ClientSession implements SessionInfo, BackendSink {
  readonly clientId: number;
  readonly secretKey: number;
  user = '';
  database = '';
  startupParameters: ReadonlyMap<string, string> = new Map();
  transactionStatus: TransactionStatus = 'I';

  get pins(): readonly PinKind[] {
    return this.sessionPins.held();
  }

  private socket: Duplex;
  private phase: Phase = 'startup';
  private readonly framer = new MessageFramer({
    maxMessageBytes: MAX_PROTOCOL_MESSAGE_BYTES,
    streamThresholdBytes: CLIENT_STREAM_THRESHOLD_BYTES,
    streamable: isClientStreamable,
    startup: true,
  });
  private busy = false;
  private backend: BackendConnection | null = null;
  /** A hook request is running: the backend stays attached whatever ReadyForQuery says. */
  private pinned = false;
  /** Extended messages buffered until Sync/Flush. */
  private batch: MessageFrame[] = [];
  private batchBytes = 0;
  private batchStreamed = false;
  /** A streamed client message still has body bytes to forward. */
  private streamingToBackend = false;
  private startupSettings = new Settings();
  private readonly settings = new Settings();
  /** Named prepared statements of this client: name → its Parse message. */
  private readonly prepared = new Map<string, Buffer>();
  /** The proxy answers in place of a lost backend: a transaction aborted by failover. */
  private aborted: AbortedTransaction | null = null;
  /** State that exists only in the backend process (temp tables, LISTEN, ...): it cannot move. */
  private readonly sessionPins = new SessionPins();
  /** Pin effects of named prepared statements, noted again at each Bind of them. */
  private readonly preparedPins = new Map<string, PinEffect[]>();
  /** The backend and its error count at the last boundary: did anything fail since? */
  private boundaryMark: { backend: BackendConnection; errors: number } | null = null;
  /** Extended messages are dropped until Sync (after an error the proxy answered itself). */
  private discardUntilSync = false;
  private holdAbort: AbortController | null = null;
  /** attachBackend has a route and is connecting or replaying state on it (counts as work in flight). */
  private acquiring = false;
  private lastRequest: ClientRequest | null = null;
  private scram: ScramServer | null = null;
  private readonly loginTimer: NodeJS.Timeout;
  private corked = false;
  private childLogger: Logger | null = null;

  constructor(
    socket: Duplex,
    private readonly host: SessionHost,
    readonly port: PortKind,
  ) {
    this.socket = socket;
    const key = host.registerSession(this);
    this.clientId = key.processId;
    this.secretKey = key.secretKey;
    this.loginTimer = setTimeout(
      () =>
        this.fatal(SqlState.ProtocolViolation, 'login timeout: the client did not complete startup in time'),
      host.config.loginTimeoutMs,
    );
    this.wire(socket);
  }

  /** Created on first use: most sessions never log, and 10k child loggers cost memory and time. */
  private get logger(): Logger {
    this.childLogger ??= this.host.logger.child({ client: this.clientId });
    return this.childLogger;
  }

  private get hooks(): ProxyHooks {
    return this.host.hooks;
  }

  private wire(socket: Duplex): void {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error) => this.logger.debug('client socket error', { error: error.message }));
    socket.on('close', () => this.end());
  }

  // ---- reading -------------------------------------------------------------------

  private onData(chunk: Buffer): void {
    if (this.phase === 'closed') return;
    this.framer.push(chunk);
    this.pump();
  }

  /** Handles buffered frames until one needs to wait; that one resumes the pump when done. */
  private pump(): void {
    while (!this.busy && this.phase !== 'closed') {
      let frame: Frame | null;
      try {
        frame = this.framer.next();
      } catch (error) {
        this.protocolFailure(error);
        return;
      }
      if (frame === null) return;
      let step: Promise<void> | undefined;
      try {
        step = this.handle(frame);
      } catch (error) {
        this.protocolFailure(error);
        return;
      }
      if (step !== undefined) {
        this.busy = true;
        this.socket.pause();
        step.then(
          () => {
            this.busy = false;
            if (this.phase === 'closed') return;
            this.socket.resume();
            this.pump();
          },
          (error) => this.stepFailed(error),
        );
      }
    }
  }

  private handle(frame: Frame): Promise<void> | undefined {
    switch (this.phase) {
      case 'startup':
        return this.handleStartup(frame);
      case 'auth':
        return this.handleAuth(frame);
      case 'ready':
        return this.handleReady(frame);
      default:
        throw new ProtocolError('unexpected data while the proxy logs in to PostgreSQL');
    }
  }

  // ---- startup and authentication -----------------------------------------------

  private handleStartup(frame: Frame): Promise<void> | undefined {
    if (frame.kind !== FrameKind.Message) throw new ProtocolError('invalid startup packet');
    const packet = parseStartupPacket(frame);
    switch (packet.kind) {
      case 'ssl': {
        if (this.framer.bufferedBytes > 0) {
          // Bytes behind an SSLRequest would be read as if they came encrypted (CVE-2021-23214).
          throw new ProtocolError('received unencrypted data after SSL request');
        }
        const context = this.host.tlsContext;
        this.framer.expectStartupPacket();
        if (context === null) {
          this.socket.write(ENCRYPTION_REFUSED);
          return;
        }
        this.socket.write(ENCRYPTION_ACCEPTED);
        this.upgradeToTls(context);
        return;
      }
      case 'gssenc':
        if (this.framer.bufferedBytes > 0)
          throw new ProtocolError('received unencrypted data after GSSENC request');
        this.framer.expectStartupPacket();
        this.socket.write(ENCRYPTION_REFUSED);
        return;
      case 'cancel':
        this.host.cancel(packet.processId, packet.secretKey);
        // close() runs end(), which unregisters this session: a cancel connection must not stay counted.
        this.close();
        return;
      case 'startup':
        return this.startup(packet);
    }
  }

  private upgradeToTls(context: tls.SecureContext): void {
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    const secure = new tls.TLSSocket(raw as import('node:net').Socket, {
      isServer: true,
      secureContext: context,
    });
    this.socket = secure;
    this.wire(secure);
  }

  private startup(message: StartupMessage): Promise<void> | undefined {
    this.user = message.params.get('user')!;
    this.database = message.params.get('database')!;
    this.startupParameters = message.params;
    this.startupSettings = Settings.fromStartup(message.params);
    for (const [name, value] of this.startupSettings.values) this.settings.values.set(name, value);
    if (message.needsNegotiation) {
      this.socket.write(
        buildNegotiateProtocolVersion(SUPPORTED_PROTOCOL_MINOR, message.unsupportedProtocolOptions),
      );
    }
    const secret = this.host.authenticator.secretFor(this.user);
    if (secret === 'trust') return this.completeLogin();
    this.scram = new ScramServer(this.user, secret, newScramNonce());
    this.phase = 'auth';
    this.socket.write(buildAuthenticationSASL([...ScramServer.mechanisms]));
    return;
  }

  private handleAuth(frame: Frame): Promise<void> | undefined {
    if (frame.kind !== FrameKind.Message || frame.type !== FrontendMessage.Password) {
      throw new ProtocolError('expected a SASL response message', SqlState.ProtocolViolation);
    }
    const scram = this.scram!;
    const step = this.scramStarted
      ? scram.final(decodeSASLResponse(frame))
      : (() => {
          const initial = decodeSASLInitialResponse(frame);
          return scram.initial(initial.mechanism, initial.data);
        })();
    this.scramStarted = true;
    if (step.kind === 'failure') {
      this.fatal(step.code, step.message);
      return;
    }
    if (step.kind === 'continue') {
      this.socket.write(buildAuthenticationSASLContinue(step.data));
      return;
    }
    this.socket.write(buildAuthenticationSASLFinal(step.data));
    return this.completeLogin();
  }

  private scramStarted = false;

  /** Authenticated: get a backend for the parameters PostgreSQL reports, then greet the client. */
  private async completeLogin(): Promise<void> {
    this.phase = 'login';
    this.scram = null;
    this.socket.write(AUTHENTICATION_OK);
    let backend: BackendConnection;
    try {
      backend = await this.attachBackend(0);
    } catch (error) {
      this.loginFailed(error);
      return;
    }
    if ((this.phase as Phase) === 'closed') return;
    clearTimeout(this.loginTimer);
    this.cork();
    this.socket.write(backend.parameterStatusMessages());
    this.socket.write(buildBackendKeyData(this.clientId, this.secretKey));
    this.socket.write(READY_FOR_QUERY_IDLE);
    this.uncork();
    this.phase = 'ready';
    this.host.counters.loginsTotal += 1;
    this.maybeRelease();
  }

  private loginFailed(error: unknown): void {
    if (error instanceof BackendLoginError) {
      this.send(buildErrorResponse({ ...error.fields, severity: 'FATAL' }));
      this.close();
    } else if (error instanceof HoldError) this.fatal(error.sqlstate, error.message);
    else if (error instanceof PoolExhaustedError) this.fatal(SqlState.TooManyConnections, error.message);
    else
      this.fatal(
        SqlState.ConnectionFailure,
        `the proxy could not log in to PostgreSQL: ${(error as Error).message}`,
      );
  }

  // ---- forwarding ------------------------------------------------------------------

  private handleReady(frame: Frame): Promise<void> | undefined {
    if (frame.kind !== FrameKind.Message) return this.handleStreamed(frame);
    const type = frame.type;
    switch (type) {
      case FrontendMessage.Query:
        return this.onQuery(frame);
      case FrontendMessage.Parse:
      case FrontendMessage.Bind:
      case FrontendMessage.Describe:
      case FrontendMessage.Execute:
      case FrontendMessage.Close:
        if (this.discardUntilSync) return;
        this.batch.push(frame);
        this.batchBytes += frame.end - frame.start;
        if (this.batchBytes > MAX_BATCH_BYTES) return this.flushBatchUnchecked();
        return;
      case FrontendMessage.Sync:
      case FrontendMessage.Flush:
        if (this.discardUntilSync) {
          if (type === FrontendMessage.Sync) this.endDiscard();
          return;
        }
        this.batch.push(frame);
        return this.onBatchEnd(type === FrontendMessage.Sync ? 'sync' : 'flush');
      case FrontendMessage.CopyData:
      case FrontendMessage.CopyDone:
      case FrontendMessage.CopyFail:
        // Outside COPY PostgreSQL ignores these too; without a backend there is no COPY.
        if (this.backend === null) return;
        return this.writeToBackend(type, frameBytes(frame));
      case FrontendMessage.FunctionCall:
        return this.forwardDefault([frame], null);
      case FrontendMessage.Terminate:
        this.close();
        return;
      default:
        if (!isFrontendMessageType(type) || type === FrontendMessage.Password) {
          throw new ProtocolError(`invalid frontend message type ${type}`);
        }
        return;
    }
  }

  private handleStreamed(frame: Frame): Promise<void> | undefined {
    if (frame.kind === FrameKind.StreamStart) {
      if (this.discardUntilSync) return;
      this.batchStreamed = this.batch.length > 0 || frame.type === FrontendMessage.Bind;
      return this.streamStart(frame.type, frame.bytes);
    }
    if (frame.kind === FrameKind.StreamPart) {
      if (!this.streamingToBackend) return;
      if (frame.last) this.streamingToBackend = false;
      const backend = this.backend;
      if (backend === null) return;
      const writable = backend.write(frame.bytes);
      if (frame.last) backend.midMessage = false;
      if (!writable) return backend.drained();
    }
    return;
  }

  private async streamStart(type: number, bytes: Buffer): Promise<void> {
    await this.flushBatchUnchecked();
    if (this.aborted !== null) {
      this.streamingToBackend = false;
      return;
    }
    const backend = await this.ensureBackend(bytes.length, false);
    if (backend === null) return;
    // A query too big to assemble is never read: it may have created anything.
    if (type === FrontendMessage.Query)
      this.sessionPins.note([{ op: 'acquire', kind: 'uninspected', name: '' }]);
    this.streamingToBackend = true;
    backend.noteSent(type, CLIENT_OWNER);
    // Until the last part is written the backend is not at a boundary: retire() closes it, never pools it.
    backend.midMessage = true;
    if (!backend.write(bytes)) await backend.drained();
  }

  private onQuery(frame: MessageFrame): Promise<void> | undefined {
    const sql = decodeQuery(frame);
    const request: ClientRequest = { kind: 'query', sql, message: toHookMessage(frame) };
    if (this.aborted !== null) {
      this.answerAborted(this.aborted.answerQuery(sql));
      return;
    }
    this.sessionPins.note(pinEffects(sql));
    const change = parseSettingChange(sql);
    if (change !== null) this.pendingSetting = change;
    return this.dispatch(request, [frame]);
  }

  private pendingSetting: ReturnType<typeof parseSettingChange> = null;

  private onBatchEnd(endsWith: 'sync' | 'flush'): Promise<void> | undefined {
    const frames = this.batch;
    const streamedBefore = this.batchStreamed;
    this.batch = [];
    this.batchBytes = 0;
    if (endsWith === 'sync') this.batchStreamed = false;
    if (this.aborted !== null) {
      this.answerAborted(this.aborted.answerBatch(frames));
      return;
    }
    this.notePinsOfBatch(frames);
    const request: ClientRequest = {
      kind: 'batch',
      messages: frames.map(toHookMessage),
      endsWith,
      streamedBefore,
    };
    return this.dispatch(request, frames);
  }

  /** A batch grew past MAX_BATCH_BYTES (or a big message streams): forward it without the hooks. */
  private flushBatchUnchecked(): Promise<void> | undefined {
    if (this.batch.length === 0) return;
    const frames = this.batch;
    this.batch = [];
    this.batchBytes = 0;
    this.batchStreamed = true;
    if (this.aborted !== null) return;
    this.notePinsOfBatch(frames);
    return this.forwardDefault(frames, null);
  }

  /** Parse texts pin (or release) as sent; a Bind of a named statement does so again. */
  private notePinsOfBatch(frames: readonly MessageFrame[]): void {
    for (const frame of frames) {
      if (frame.type === FrontendMessage.Parse) {
        let parse: { statement: string; sql: string };
        try {
          parse = decodeParse(frame);
        } catch {
          continue; // PostgreSQL rejects the malformed message; nothing runs.
        }
        const effects = pinEffects(parse.sql);
        if (parse.statement !== '') {
          if (effects.length > 0) this.preparedPins.set(parse.statement, effects);
          else this.preparedPins.delete(parse.statement);
        }
        this.sessionPins.note(effects);
      } else if (frame.type === FrontendMessage.Bind && this.preparedPins.size > 0) {
        try {
          const effects = this.preparedPins.get(decodeBindNames(frame).statement);
          if (effects !== undefined) this.sessionPins.note(effects);
        } catch {
          // Malformed: PostgreSQL rejects it.
        }
      }
    }
  }

  private dispatch(request: ClientRequest, frames: MessageFrame[]): Promise<void> | undefined {
    const backend = this.backend;
    if (backend !== null && this.mustHoldInTransaction(backend))
      return this.holdInTransaction(backend, request, frames);
    return this.dispatchNow(request, frames);
  }

  private dispatchNow(request: ClientRequest, frames: MessageFrame[]): Promise<void> | undefined {
    if (!this.hooks.interceptsRequests) return this.forwardDefault(frames, request);
    return this.dispatchToHooks(request, frames);
  }

  /**
   * A transaction is open on `backend`, but this proxy can no longer vouch that its
   * PostgreSQL may write in the backend's term: a primary's sidecar woken from a
   * freeze longer than its lease (its first client bytes are read before any timer
   * or peer message tells it the term moved on), or a proxy cut off from the leader.
   */
  private mustHoldInTransaction(backend: BackendConnection): boolean {
    return (
      this.port === 'write' &&
      this.transactionStatus !== 'I' &&
      !this.host.mayContinue(backend.term, backend.endpoint)
    );
  }

  /**
   * Holds the request (bounded like any hold) until the term is vouched for again
   * (the lease came back: it goes on) or the transaction is lost: the term moved,
   * the backend was fenced, and the request gets the aborted-by-failover answer
   * (40001; nothing committed, the COMMIT never left the proxy). Past the bound the
   * transaction is given up the same way. Never forwarded meanwhile: a COMMIT sent
   * by a zombie would at best hang on synchronous replication and end as 08007.
   */
  private async holdInTransaction(
    backend: BackendConnection,
    request: ClientRequest,
    frames: MessageFrame[],
  ): Promise<void> {
    const bytes = frames.reduce((n, f) => n + f.end - f.start, 0);
    // A lost backend's verdict is applied asynchronously: wait for it, do not attach a new one.
    const ready = () =>
      this.phase === 'closed' ||
      this.aborted !== null ||
      (this.backend === backend
        ? this.host.mayContinue(backend.term, backend.endpoint)
        : this.transactionStatus === 'I');
    this.holdAbort = new AbortController();
    try {
      const deadlineMs = Date.now() + this.host.config.holdTimeoutMs;
      await this.host.holds.hold(bytes, deadlineMs, this.holdAbort.signal, ready, IN_TRANSACTION_RECHECK_MS);
    } catch {
      if (this.phase === 'closed') return;
      if (this.backend === backend) {
        this.backend = null;
        backend.detach();
        backend.close('connection-lost');
      }
      if (this.aborted === null) {
        this.aborted = new AbortedTransaction(true);
        this.transactionStatus = 'E';
      }
    } finally {
      this.holdAbort = null;
    }
    if (this.phase === 'closed') return;
    if (this.aborted !== null) {
      const aborted = this.aborted;
      this.answerAborted(
        request.kind === 'query' ? aborted.answerQuery(request.sql) : aborted.answerBatch(frames),
      );
      return;
    }
    return this.dispatchNow(request, frames);
  }

  private async dispatchToHooks(request: ClientRequest, frames: MessageFrame[]): Promise<void> {
    this.pinned = true;
    let handled: boolean;
    try {
      handled = await this.hooks.onRequest(this.requestContext(), request);
    } catch (error) {
      this.pinned = false;
      this.hookFailed(error, request);
      return;
    }
    this.pinned = false;
    if (handled) {
      this.maybeRelease();
      return;
    }
    await this.forwardDefault(frames, request);
  }

  private hookFailed(error: unknown, request: ClientRequest): void {
    if (
      error instanceof HoldError ||
      error instanceof PoolExhaustedError ||
      error instanceof BackendLoginError
    ) {
      const [code, message] = describeAcquireFailure(error);
      this.failRequest(code, message, request.kind === 'query' || request.endsWith === 'sync');
      return;
    }
    if (error instanceof BackendLostError) {
      this.fatal(
        SqlState.TransactionResolutionUnknown,
        'the connection to PostgreSQL was lost; the outcome is unknown',
      );
      return;
    }
    throw error;
  }

  /** Forwards whole client messages; the client gets the answers. */
  private forwardDefault(frames: MessageFrame[], request: ClientRequest | null): Promise<void> | undefined {
    if (request !== null) this.lastRequest = request;
    const backend = this.backend;
    if (backend !== null && !this.mustHoldAttached(backend)) return this.writeFrames(backend, frames);
    const lastType = frames[frames.length - 1]!.type;
    const bytes = frames.reduce((n, f) => n + f.end - f.start, 0);
    return this.ensureBackend(bytes, endsWithReadyForQuery(lastType)).then((attached) => {
      if (attached !== null) return this.writeFrames(attached, frames);
    });
  }

  private writeFrames(backend: BackendConnection, frames: MessageFrame[]): Promise<void> | undefined {
    let writable = true;
    backend.cork();
    for (const frame of frames) {
      const bytes = frameBytes(frame);
      this.trackStatement(backend, frame.type, bytes);
      writable = backend.send(frame.type, bytes, CLIENT_OWNER);
    }
    backend.uncork();
    return writable ? undefined : backend.drained();
  }

  private writeToBackend(type: number, bytes: Buffer): Promise<void> | undefined {
    const backend = this.backend!;
    return backend.send(type, bytes, CLIENT_OWNER) ? undefined : backend.drained();
  }

  /** Keeps this client's and the backend's named statements in step with forwarded Parse/Close. */
  private trackStatement(backend: BackendConnection, type: number, bytes: Buffer): void {
    if (type === FrontendMessage.Parse) {
      const name = parseStatementName(bytes);
      if (name === null || name === '') return;
      if (backend.prepared.has(name) && !this.prepared.has(name)) {
        // Another client's statement of that name lives on this shared backend: drop it first.
        backend.send(FrontendMessage.Close, buildClose(TargetKind.Statement, name), SWALLOW);
      }
      const copy = Buffer.from(bytes);
      this.prepared.set(name, copy);
      backend.prepared.set(name, copy);
    } else if (type === FrontendMessage.Close) {
      const target = closeTarget(bytes);
      if (target === null || target.kind !== TargetKind.Statement || target.name === '') return;
      this.prepared.delete(target.name);
      backend.prepared.delete(target.name);
    }
  }

  // ---- backends: acquire, replay, release, loss ----------------------------------

  /** The attached backend, or a new one; null when the request was answered with an error instead. */
  private async ensureBackend(bytes: number, endsWithReady: boolean): Promise<BackendConnection | null> {
    if (this.backend !== null && !this.mustHoldAttached(this.backend)) return this.backend;
    try {
      if (this.backend !== null) await this.holdAttached(bytes);
      return this.backend ?? (await this.attachBackend(bytes));
    } catch (error) {
      if (this.phase === 'closed') return null;
      const [code, message] = describeAcquireFailure(error);
      this.failRequest(code, message, endsWithReady);
      return null;
    }
  }

  /**
   * Acquires a backend on the current route (holding while there is none, bounded by
   * holdTimeoutMs), re-applies this client's settings and prepared statements, attaches it.
   */
  private async attachBackend(bytes: number): Promise<BackendConnection> {
    // Session pooling: a session that had a backend and holds state only that one had
    // never silently gets another (whichever path dropped the old one).
    if (this.boundaryMark !== null && this.host.config.poolMode === 'session' && this.endIfPinned())
      throw new BackendLostError('connection-lost');
    const deadlineMs = Date.now() + this.host.config.holdTimeoutMs;
    this.holdAbort = new AbortController();
    let reportedUnreachable = false;
    try {
      for (;;) {
        this.acquiring = false;
        let route: Route | null = this.host.route(this.port);
        if (route === null) {
          await this.host.holds.hold(bytes, deadlineMs, this.holdAbort.signal, () => {
            route = this.host.route(this.port);
            return route !== null;
          });
        }
        const term = this.host.currentTerm();
        let backend: BackendConnection;
        this.acquiring = true;
        try {
          const acquired = await this.acquireUnlessRerouted(
            this.host.pool.acquire(
              { endpoint: route!.endpoint, database: this.database, user: this.host.backendUser(this.user) },
              term,
            ),
            route!,
            term,
          );
          if (acquired === null) continue;
          backend = acquired;
        } catch (error) {
          if (error instanceof PoolExhaustedError) throw error;
          // A server shutting down, crashing or starting up (57P01/57P02/57P03) is unreachable, not a refusal.
          if (error instanceof BackendLoginError && !SERVER_GOING_AWAY.has(error.fields.code)) throw error;
          if (!reportedUnreachable) {
            this.logger.info('backend unreachable; holding the request', { error: (error as Error).message });
            reportedUnreachable = true;
          }
          const retryAtMs = Date.now() + RECONNECT_RETRY_MS;
          const retryDue = () => Date.now() >= retryAtMs;
          this.acquiring = false;
          await this.host.holds.hold(bytes, deadlineMs, this.holdAbort.signal, retryDue, RECONNECT_RETRY_MS);
          continue;
        }
        if (this.phase === 'closed') {
          this.host.pool.release(backend);
          throw new Error('client went away');
        }
        try {
          await this.replayState(backend);
        } catch (error) {
          backend.close('connection-lost');
          if (error instanceof BackendLostError) continue;
          throw error;
        }
        this.backend = backend;
        this.boundaryMark = { backend, errors: backend.errorResponses };
        backend.attach(this);
        return backend;
      }
    } finally {
      this.holdAbort = null;
      this.acquiring = false;
    }
  }

  /**
   * Session pooling keeps a backend attached between transactions, so a new one
   * would start on it even while writes are held (a switchover draining the
   * primary, no primary in this term): at a transaction boundary with no write
   * route, the request waits like one without a backend.
   */
  private mustHoldAttached(backend: BackendConnection): boolean {
    return (
      this.port === 'write' &&
      this.transactionStatus === 'I' &&
      backend.atBoundary &&
      this.host.route(this.port) === null
    );
  }

  /** Holds until writes have a route again; a backend that is not on that route (older term) is dropped. */
  private async holdAttached(bytes: number): Promise<void> {
    this.holdAbort = new AbortController();
    try {
      const deadlineMs = Date.now() + this.host.config.holdTimeoutMs;
      await this.host.holds.hold(
        bytes,
        deadlineMs,
        this.holdAbort.signal,
        () => this.host.route(this.port) !== null,
      );
    } finally {
      this.holdAbort = null;
    }
    const backend = this.backend;
    const route = this.host.route(this.port);
    if (backend === null) return;
    const moved = route === null || endpointKey(route.endpoint) !== endpointKey(backend.endpoint);
    if (!moved && backend.term >= this.host.currentTerm()) return;
    this.backend = null;
    backend.detach();
    backend.close('term-change');
    // State that cannot move ends the session (as in onTopology) rather than vanish.
    if (this.endIfPinned()) throw new BackendLostError('connection-lost');
  }

  /** A request or transaction of this write-port session is on a backend, or about to be: a switchover waits for it. */
  get writeInFlight(): boolean {
    if (this.port !== 'write') return false;
    if (this.acquiring) return true;
    // Held (no route, or waiting at a boundary): nothing of it runs on a backend.
    if (this.holdAbort !== null) return false;
    if (this.pinned) return true;
    return this.backend !== null && !this.backend.atBoundary;
  }

  /**
   * Waits for `acquiring` unless the route moves elsewhere first: a connect to a primary
   * that died with its machine may hang until the connect timeout, while the topology
   * already names the new one. The late connection then goes back to the pool (or closes).
   */
  private async acquireUnlessRerouted(
    acquiring: Promise<BackendConnection>,
    route: Route,
    term: number,
  ): Promise<BackendConnection | null> {
    const settled = acquiring.then(
      (backend) => ({ backend }),
      (error: unknown) => ({ error }),
    );
    for (;;) {
      const change = this.host.holds.nextChange();
      const outcome = await Promise.race([settled, change.changed.then(() => null)]);
      change.cancel();
      if (outcome !== null) {
        if ('error' in outcome) throw outcome.error;
        return outcome.backend;
      }
      const now = this.host.route(this.port);
      const same =
        now !== null &&
        endpointKey(now.endpoint) === endpointKey(route.endpoint) &&
        this.host.currentTerm() === term;
      if (same) continue;
      this.logger.info('the route moved while connecting to the old one; following it');
      settled.then((late) => {
        if (!('backend' in late)) return;
        if (late.backend.term < this.host.currentTerm()) late.backend.close('term-change');
        else this.host.pool.release(late.backend);
      });
      return null;
    }
  }

  /** Makes `backend` look like this client's session: settings, then named prepared statements. */
  private async replayState(backend: BackendConnection): Promise<void> {
    const diff = this.settings.diffFrom(backend.settings);
    if (diff !== '') {
      try {
        await backend.query(diff);
      } catch {
        if (backend.closed) throw new BackendLostError('connection-lost');
        await this.replaySettingsOneByOne(backend);
      }
      backend.settings.clear();
      for (const [name, value] of this.settings.values) backend.settings.set(name, value);
    }
    const missing = [...this.prepared].filter(
      ([name, parse]) => !sameBytes(backend.prepared.get(name), parse),
    );
    if (missing.length === 0) return;
    for (const [name, parse] of missing) {
      // Close is harmless on a missing statement and clears one of the same name.
      const collector = new OwnedQueryCollector(3);
      backend.noteSent(FrontendMessage.Close, collector);
      backend.write(buildClose(TargetKind.Statement, name));
      backend.noteSent(FrontendMessage.Parse, collector);
      backend.write(parse);
      backend.noteSent(FrontendMessage.Sync, collector);
      backend.write(SYNC);
      try {
        await collector.result;
        backend.prepared.set(name, parse);
      } catch (error) {
        if (backend.closed) throw new BackendLostError('connection-lost');
        // It no longer parses (a dropped table): the client sees the error when it uses it.
        this.logger.info('prepared statement could not be re-created', {
          name,
          error: (error as Error).message,
        });
        this.prepared.delete(name);
        backend.prepared.delete(name);
      }
    }
  }

  /** A setting PostgreSQL refuses (a bad value the client SET) is dropped, not replayed forever. */
  private async replaySettingsOneByOne(backend: BackendConnection): Promise<void> {
    await backend.query('RESET ALL');
    for (const [name, value] of [...this.settings.values]) {
      const single = new Settings();
      single.values.set(name, value);
      try {
        await backend.query(single.diffFrom(new Map()));
      } catch (error) {
        if (backend.closed) throw new BackendLostError('connection-lost');
        this.logger.info('setting could not be re-applied; dropped', {
          name,
          error: (error as Error).message,
        });
        this.settings.values.delete(name);
      }
    }
  }

  /** Transaction pooling: give the backend back once the client is idle at a boundary. */
  private maybeRelease(): void {
    const backend = this.backend;
    if (backend === null || this.pinned || this.streamingToBackend || this.batch.length > 0) return;
    if (!backend.atBoundary) return;
    if (this.host.config.poolMode === 'transaction' || backend.term < this.host.currentTerm()) {
      this.backend = null;
      if (backend.term < this.host.currentTerm()) {
        backend.detach();
        backend.close('term-change');
        this.endIfPinned();
      } else {
        this.host.pool.release(backend);
      }
    }
  }

  /** The topology changed: a backend of an older term is dropped, now if idle, else by failing its work. */
  onTopology(view: ClusterView): void {
    const backend = this.backend;
    if (backend === null || backend.term >= view.term) return;
    if (backend.atBoundary && !this.pinned && !this.streamingToBackend && this.batch.length === 0) {
      this.backend = null;
      backend.detach();
      backend.close('term-change');
      this.endIfPinned();
      return;
    }
    backend.close('term-change');
  }

  /** The client asked to cancel: a held request ends with 57014, a running one is cancelled on PostgreSQL. */
  cancelRequest(): void {
    if (this.holdAbort !== null) {
      this.holdAbort.abort();
      return;
    }
    const backend = this.backend;
    if (backend === null || backend.tracker.pending === 0) return;
    if (!this.hooks.canForwardCancel(this)) {
      this.logger.info('cancel request dropped: a commit waits on synchronous replication');
      return;
    }
    this.host.counters.cancelsForwarded += 1;
    backend.cancel(this.host.connector).catch((error) => {
      this.logger.info('could not forward a cancel request', { error: (error as Error).message });
    });
  }

  // BackendSink ------------------------------------------------------------------

  deliver(bytes: Buffer): boolean {
    if (this.phase === 'closed') return true;
    return this.socket.write(bytes);
  }

  whenDrained(resume: () => void): void {
    if (this.phase === 'closed') {
      resume();
      return;
    }
    const socket = this.socket;
    const done = () => {
      socket.off('drain', done);
      socket.off('close', done);
      resume();
    };
    socket.on('drain', done);
    socket.on('close', done);
  }

  onReadyForQuery(status: TransactionStatus): void {
    this.transactionStatus = status;
    const backend = this.backend;
    if (backend === null || backend.tracker.owedReadyForQuery() > 0) {
      this.maybeRelease();
      return;
    }
    if (status === 'I') this.settlePins(backend);
    const change = this.pendingSetting;
    this.pendingSetting = null;
    if (change !== null) this.transactionSettings.push(change);
    // A SET inside a transaction block only lasts if the block commits.
    if (status === 'I' && this.transactionSettings.length > 0) {
      if (backend.lastCompletion !== 'ROLLBACK') {
        for (const committed of this.transactionSettings)
          this.settings.apply(committed, this.startupSettings);
        backend.settings.clear();
        for (const [name, value] of this.settings.values) backend.settings.set(name, value);
      }
      this.transactionSettings = [];
    }
    this.maybeRelease();
  }

  /** At a boundary: releases since the last one count only if nothing failed or rolled back. */
  private settlePins(backend: BackendConnection): void {
    const mark = this.boundaryMark;
    const clean =
      mark !== null &&
      mark.backend === backend &&
      mark.errors === backend.errorResponses &&
      backend.lastCompletion !== 'ROLLBACK';
    this.sessionPins.settle(clean);
    this.boundaryMark = { backend, errors: backend.errorResponses };
  }

  /**
   * The session's backend is gone (failover, server restart, term change). A session
   * holding state that exists only there ends with FATAL 57P01 instead of moving on
   * silently without it. Returns true when it ended the session.
   */
  private endIfPinned(): boolean {
    const held = this.sessionPins.held();
    if (held.length === 0 || this.phase === 'closed') return false;
    const { message, detail } = pinnedSessionLost(held);
    this.logger.info('backend lost under a session pinned to it; ending the session', {
      pins: held.join(','),
    });
    this.fatal(SqlState.AdminShutdown, message, detail);
    return true;
  }

  /** SET statements of the open transaction block, applied if it commits. */
  private transactionSettings: NonNullable<ReturnType<typeof parseSettingChange>>[] = [];

  onLost(reason: 'term-change' | 'connection-lost', owedReadyForQuery: number, batchOpen: boolean): void {
    const lostTerm = this.backend?.term ?? 0;
    this.backend = null;
    this.host.counters.backendsLost += 1;
    if (this.pinned || this.phase !== 'ready') return;
    const inFlight = owedReadyForQuery > 0 || batchOpen;
    if (!inFlight && this.transactionStatus === 'I') {
      this.endIfPinned();
      return;
    }
    const wasInTransaction = this.transactionStatus !== 'I';
    this.hooks
      .onBackendLost({
        session: this,
        lostTerm,
        reason,
        inFlight,
        lastRequest: this.lastRequest,
        newBackend: () => this.attachChannel(),
      })
      .then(
        (verdict) => this.applyVerdict(verdict, owedReadyForQuery, batchOpen, wasInTransaction),
        (error) => {
          this.logger.error('onBackendLost hook failed', { error: (error as Error).message });
          this.applyVerdict({ action: 'unknown' }, owedReadyForQuery, batchOpen, wasInTransaction);
        },
      );
  }

  private applyVerdict(
    verdict: LossVerdict,
    owed: number,
    batchOpen: boolean,
    wasInTransaction: boolean,
  ): void {
    if (this.phase === 'closed') return;
    switch (verdict.action) {
      case 'unknown':
        this.fatal(
          SqlState.TransactionResolutionUnknown,
          'the connection to the primary was lost while a statement was running; its outcome is unknown',
        );
        return;
      case 'fatal':
        this.fatal(verdict.sqlstate, verdict.message);
        return;
      case 'respond':
        this.send(verdict.bytes);
        this.transactionStatus = verdict.transactionStatus;
        this.endIfPinned();
        return;
      case 'abort': {
        if (this.endIfPinned()) return;
        const abort = abortedByFailoverError(
          'The primary changed while the transaction was open. Retrying the whole transaction is safe.',
        );
        const status: TransactionStatus = wasInTransaction ? 'E' : 'I';
        this.cork();
        for (let i = 0; i < owed; i++) {
          this.send(abort);
          this.send(buildReadyForQuery(STATUS_BYTE[status]));
        }
        if (batchOpen) {
          if (owed === 0) this.send(abort);
          this.discardUntilSync = true;
        }
        this.uncork();
        if (wasInTransaction) this.aborted = new AbortedTransaction(owed === 0 && !batchOpen);
        this.transactionStatus = status;
        return;
      }
    }
  }

  private endDiscard(): void {
    this.discardUntilSync = false;
    this.send(buildReadyForQuery(STATUS_BYTE[this.transactionStatus]));
  }

  /** In a transaction the failover aborted, the proxy answers until the client rolls back. */
  private answerAborted(answer: AbortedAnswer): void {
    if (answer.bytes.length > 0) this.send(answer.bytes);
    if (answer.ended) {
      this.aborted = null;
      this.transactionStatus = 'I';
    }
  }

  // ---- hooks plumbing ------------------------------------------------------------

  private requestContext(): RequestContext {
    return {
      session: this,
      backend: () => this.attachChannel(),
      sendToClient: (bytes) => {
        const backend = this.backend;
        if (backend !== null && backend.tracker.pending > 0) backend.tracker.synthesize(bytes);
        else this.send(bytes);
      },
      close: (code, message, detail) => this.fatal(code, message, detail),
    };
  }

  private async attachChannel(): Promise<BackendChannel> {
    if (this.backend !== null && this.mustHoldAttached(this.backend)) await this.holdAttached(0);
    const backend = this.backend ?? (await this.attachBackend(0));
    return channelOf(backend);
  }

  // ---- output and ending ---------------------------------------------------------

  cork(): void {
    if (this.corked || this.phase === 'closed') return;
    this.corked = true;
    this.socket.cork();
  }

  uncork(): void {
    if (!this.corked) return;
    this.corked = false;
    this.socket.uncork();
  }

  private send(bytes: Buffer): void {
    if (this.phase !== 'closed') this.socket.write(bytes);
  }

  /**
   * The current request failed before reaching PostgreSQL (the session goes on): an
   * ErrorResponse, then ReadyForQuery when the request ended with a Query/Sync, else the
   * rest of the batch is dropped up to its Sync, as PostgreSQL does after an error.
   */
  private failRequest(code: string, message: string, endsWithReady: boolean): void {
    this.send(errorMessage(code, message));
    if (endsWithReady) this.send(buildReadyForQuery(STATUS_BYTE[this.transactionStatus]));
    else this.discardUntilSync = true;
  }

  private fatal(code: string, message: string, detail?: string): void {
    if (this.phase === 'closed') return;
    this.send(buildFatalError(code, message, detail));
    this.close();
  }

  private protocolFailure(error: unknown): void {
    if (!isProtocolError(error)) {
      this.logger.error('session failed', { error: (error as Error).stack });
      this.fatal(SqlState.InternalError, 'internal error in the proxy session');
      return;
    }
    this.host.counters.protocolErrors += 1;
    this.fatal(error.code, error.message);
  }

  private stepFailed(error: unknown): void {
    this.busy = false;
    if (this.phase === 'closed') return;
    this.protocolFailure(error);
  }

  /** The proxy is stopping: tell the client why, then close. */
  shutdown(): void {
    this.fatal(SqlState.AdminShutdown, 'terminating connection: the proxy is shutting down');
  }

  /** Ends the session: flushes what was queued, then closes the socket. */
  close(): void {
    if (this.phase === 'closed') return;
    this.socket.end();
    this.end();
  }

  /** Releases everything; a backend that is not clean is cancelled and closed, never pooled. */
  private end(): void {
    if (this.phase === 'closed' && this.backend === null) return;
    this.phase = 'closed';
    clearTimeout(this.loginTimer);
    this.holdAbort?.abort();
    this.host.unregisterSession(this);
    const backend = this.backend;
    this.backend = null;
    if (backend !== null) this.retire(backend);
    if (!this.socket.destroyed) this.socket.end();
  }

  private retire(backend: BackendConnection): void {
    backend.detach();
    if (backend.tracker.pending > 0) {
      // A running statement would keep its transaction open until it finishes: cancel it.
      backend
        .cancel(this.host.connector)
        .catch(() => {})
        .finally(() => backend.close('connection-lost'));
      return;
    }
    if (!backend.atBoundary || backend.term < this.host.currentTerm()) {
      backend.close('connection-lost');
      return;
    }
    if (this.host.config.poolMode === 'transaction') {
      this.host.pool.release(backend);
      return;
    }
    // Session pooling: the next client must not inherit this one's session.
    backend.query('DISCARD ALL').then(
      () => {
        backend.settings.clear();
        backend.prepared.clear();
        this.host.pool.release(backend);
      },
      () => backend.close('connection-lost'),
    );
  }
}

const SWALLOW: ResponseOwner = { toClient: false };

function endsWithReadyForQuery(type: number): boolean {
  return (
    type === FrontendMessage.Sync || type === FrontendMessage.Query || type === FrontendMessage.FunctionCall
  );
}

function describeAcquireFailure(error: unknown): [string, string] {
  if (error instanceof HoldError) return [error.sqlstate, error.message];
  if (error instanceof PoolExhaustedError) return [SqlState.TooManyConnections, error.message];
  if (error instanceof BackendLoginError) return [error.fields.code, error.fields.message];
  return [SqlState.ConnectionFailure, `could not reach PostgreSQL: ${(error as Error).message}`];
}

function sameBytes(a: Buffer | undefined, b: Buffer): boolean {
  return a?.equals(b) === true;
}

function toHookMessage(frame: MessageFrame): HookMessage {
  return { type: frame.type, raw: frameBytes(frame) };
}

/** The hooks' view of a backend (see BackendChannel in hooks.ts). */
function channelOf(backend: BackendConnection): BackendChannel {
  return {
    term: backend.term,
    endpoint: backend.endpoint,
    backendPid: backend.processId,
    query(sql: string, params?: readonly (string | null)[]): Promise<OwnedQueryResult> {
      return backend.query(sql, params);
    },
    forward(messages: readonly Buffer[], filter?: ResponseFilter): Promise<void> {
      if (backend.closed) return Promise.reject(new BackendLostError('connection-lost'));
      const answered = messages.filter((m) => expectsAnswer(m[0]!)).length;
      return new Promise((resolve, reject) => {
        let remaining = answered;
        const owner: ResponseOwner = {
          toClient: true,
          ...(filter === undefined ? {} : { filter }),
          onDone: () => {
            remaining -= 1;
            if (remaining > 0) return;
            if (backend.closed) reject(new BackendLostError('connection-lost'));
            else resolve();
          },
        };
        backend.cork();
        for (const message of messages) backend.send(message[0]!, message, owner);
        backend.uncork();
        if (answered === 0) resolve();
      });
    },
  };
}
