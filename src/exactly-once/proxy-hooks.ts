// The exactly-once layer on the proxy's data path (src/proxy/hooks.ts is the seam).
//
// - A keyed autocommit statement runs as `BEGIN; claim key; statement` then
//   `store outcome; COMMIT`: the key row commits with the work, so a retry (the
//   client's or the proxy's own after a failover) finds it and gets the stored
//   outcome instead of running again.
// - With mode `all`, an unkeyed autocommit write runs as `BEGIN; statement; fence`
//   then `COMMIT`, and a client COMMIT is preceded by the fence, so a commit in
//   flight at a crash is resolved from `(xid, L)` and S (outcome.ts).
// - While a COMMIT is on the wire, CancelRequests are dropped: cancelling the
//   synchronous-replication wait would report a commit that is already local.
import type { TopologySource } from '../cluster/view.ts';
import type { Logger } from '../log.ts';
import {
  type BackendChannel,
  type BackendLossContext,
  BackendLostError,
  type ClientRequest,
  type FrontendMessage as HookMessage,
  type LossVerdict,
  OwnedQueryError,
  type ProxyHooks,
  type RequestContext,
  type SessionInfo,
} from '../proxy/hooks.ts';
import {
  BIND_COMPLETE,
  buildCommandComplete,
  buildErrorResponse,
  buildReadyForQuery,
  CLOSE_COMPLETE,
  decodeErrorResponse,
  NO_DATA,
  PARSE_COMPLETE,
} from '../wire/backend.ts';
import type { MessageView } from '../wire/framer.ts';
import { buildQuery, decodeBind, decodeDescribe, decodeParse } from '../wire/frontend.ts';
import { BackendMessage, FrontendMessage, TargetKind, TransactionStatus } from '../wire/protocol.ts';
import { classify, classifyStatement, type StatementClass } from './classify.ts';
import type { ExactlyOnceConfig } from './config.ts';
import { failpoint, failpointsActive } from './failpoints.ts';
import { fingerprint } from './fingerprint.ts';
import {
  type CommentKey,
  extractCommentKey,
  recognizeSetConfigKey,
  type SetConfigKey,
  stripKeyComment,
} from './key.ts';
import { installLedger, type SqlClient } from './ledger.ts';
import { statements, tokenize } from './lexer.ts';
import { type Facts, type Fence, type InFlight, resolve, type Verdict, type XactStatus } from './outcome.ts';
import {
  type ErrorReply,
  invalidKeyError,
  keyAlreadyCommittedError,
  keyNotSupportedError,
  keyReusedError,
  respond,
} from './response.ts';
import { keyScope } from './scope.ts';
import {
  backendAliveSql,
  claimSql,
  completeSql,
  FENCE_SQL,
  lookupSql,
  parseByteaHex,
  parseLsn,
  STANDBY_FLUSH_SQL,
  terminateBackendSql,
  textLiteral,
  xactStatusSql,
} from './sql-text.ts';
import { requiredSyncStandbys, type StandbyFlush, syncFlushed } from './sync-flush.ts';
import { decodeTextRow, sqlstateOf, WrapFilter } from './wrap-filter.ts';

export interface ExactlyOnceHooksOptions {
  config: ExactlyOnceConfig;
  /** Where S (promotedAtLsn) and the term come from. */
  topology: TopologySource;
  logger: Logger;
}

/** Per client session; kept in a WeakMap keyed by the session so it dies with it. */
interface Track {
  readonly scope: string;
  /** A COMMIT is on the wire: CancelRequests are dropped. */
  commitInFlight: boolean;
  /** Key claimed by set_config in the open transaction. */
  transactionKey: string | null;
  /** Named prepared statements → SQL text, to classify a Bind of an earlier Parse. */
  readonly statements: Map<string, string>;
}

interface KeyedRequest {
  key: string;
  fingerprint: string;
}

/** A request sent wrapped: the simple Query text or the extended batch, and what the client expects back. */
interface WrappedRequest {
  protocol: 'simple' | 'extended';
  /** simple: the statement text (key comment stripped). */
  text: string;
  /** simple: number of statements in `text`. */
  statementCount: number;
  /** extended: the client's messages, the last one its Sync. */
  batch: readonly HookMessage[];
  keyed: KeyedRequest | null;
}

interface StoredRow {
  fingerprint: string;
  commandTag: string | null;
  rowDescription: Buffer | null;
  dataRows: Buffer | null;
  truncated: boolean;
}

/** Keyed requests that lost their backend before committing are re-run, at most this often. */
const MAX_KEYED_ATTEMPTS = 3;
const TERMINATE_WAIT_MS = 5000;
const TERMINATE_POLL_MS = 50;
/** Polling pg_stat_replication while a same-primary commit waits for its synchronous standby. */
const SYNC_FLUSH_POLL_MS = 20;
// Cheap prefilters: the lexer runs only on text that can matter, so the common
// statement inside a transaction costs a few regex scans, not several tokenizations.
const MAY_HAVE_KEY = /pgward_key/;
const MAY_SET_KEY = /pgward\.idempotency_key/i;
/** COMMIT/END anywhere (leading comments, multi-statement text): classify decides. */
const MAY_COMMIT = /\b(commit|end)\b/i;
/** Transaction-form keys have no request text to compare: one constant fingerprint, hashed once. */
const TRANSACTION_KEY_FINGERPRINT = fingerprint({ sql: 'pgward transaction key' });
/** SQLSTATEs that mean the ledger is not installed in this database. */
const LEDGER_MISSING = new Set(['3F000', '42883', '42P01']);

export class ExactlyOnceHooks implements ProxyHooks {
  readonly interceptsRequests: boolean;
  private readonly tracks = new WeakMap<SessionInfo, Track>();

  constructor(private readonly options: ExactlyOnceHooksOptions) {
    this.interceptsRequests = options.config.mode !== 'off';
  }

  canForwardCancel(session: SessionInfo): boolean {
    return !(this.tracks.get(session)?.commitInFlight ?? false);
  }

  async onRequest(ctx: RequestContext, request: ClientRequest): Promise<boolean> {
    const track = this.track(ctx.session);
    if (ctx.session.transactionStatus === 'I') track.transactionKey = null;
    return request.kind === 'query'
      ? this.onQuery(ctx, track, request.sql, request.message)
      : this.onBatch(ctx, track, request);
  }

  async onBackendLost(ctx: BackendLossContext): Promise<LossVerdict> {
    const track = this.track(ctx.session);
    const inTransaction = ctx.session.transactionStatus !== 'I';
    let verdict: Verdict = 'not-committed';
    if (ctx.inFlight && mayCommit(ctx.lastRequest, inTransaction, track)) verdict = 'unknown';
    const response = respond(verdict, ctx.session.pins);
    if (response.kind === 'error' && response.error.severity === 'FATAL') {
      if (response.error.code === '08007') return { action: 'unknown' };
      return { action: 'fatal', sqlstate: response.error.code, message: response.error.message };
    }
    return { action: 'abort' };
  }

  private track(session: SessionInfo): Track {
    let track = this.tracks.get(session);
    if (track === undefined) {
      const options = session.startupParameters.get('options');
      track = {
        scope: keyScope({ user: session.user, database: session.database, ...(options ? { options } : {}) }),
        commitInFlight: false,
        transactionKey: null,
        statements: new Map(),
      };
      this.tracks.set(session, track);
    }
    return track;
  }

  // ---- simple protocol ------------------------------------------------------------

  private async onQuery(
    ctx: RequestContext,
    track: Track,
    sql: string,
    message: HookMessage,
  ): Promise<boolean> {
    const status = ctx.session.transactionStatus;
    const comment: CommentKey = MAY_HAVE_KEY.test(sql) ? extractCommentKey(sql) : { kind: 'none' };
    if (comment.kind === 'invalid') return this.reject(ctx, invalidKeyError(comment.reason));
    if (comment.kind === 'key') {
      if (status !== 'I') {
        return this.reject(
          ctx,
          keyNotSupportedError(
            'a pgward_key comment keys an autocommit statement; in a transaction use set_config',
          ),
        );
      }
      const text = stripKeyComment(sql);
      const kind = classify(text);
      if (kind.kind !== 'write' && kind.kind !== 'read')
        return this.reject(ctx, keyNotSupportedError(describe(kind)));
      const keyed = { key: comment.key, fingerprint: fingerprint({ sql: text }) };
      return this.runWrapped(ctx, track, { protocol: 'simple', text, statementCount: 1, batch: [], keyed });
    }
    if (status === 'T') {
      const setKey: SetConfigKey = MAY_SET_KEY.test(sql) ? recognizeSetConfigKey(sql) : { kind: 'none' };
      if (setKey.kind === 'invalid') return this.reject(ctx, invalidKeyError(setKey.reason));
      if (setKey.kind === 'literal')
        return this.claimTransactionKey(ctx, track, [message.raw], setKey.key, sql);
      if (!MAY_COMMIT.test(sql)) return false;
      const kind = classify(sql);
      if (kind.kind === 'transaction' && kind.verb === 'commit' && this.fencesCommits(track)) {
        return this.fencedCommit(ctx, track, [message.raw]);
      }
      return false;
    }
    if (status !== 'I' || this.options.config.mode !== 'all') return false;
    const kind = classify(sql);
    if (kind.kind === 'write') {
      return this.runWrapped(ctx, track, {
        protocol: 'simple',
        text: sql,
        statementCount: 1,
        batch: [],
        keyed: null,
      });
    }
    if (kind.kind === 'multi' && everyStatementWrappable(sql)) {
      const request: WrappedRequest = {
        protocol: 'simple',
        text: sql,
        statementCount: kind.count,
        batch: [],
        keyed: null,
      };
      return this.runWrapped(ctx, track, request);
    }
    return false;
  }

  private fencesCommits(track: Track): boolean {
    return this.options.config.mode === 'all' || track.transactionKey !== null;
  }

  // ---- extended protocol ----------------------------------------------------------

  private async onBatch(
    ctx: RequestContext,
    track: Track,
    request: Extract<ClientRequest, { kind: 'batch' }>,
  ): Promise<boolean> {
    const executions = this.readBatch(track, request.messages);
    if (request.endsWith !== 'sync' || request.streamedBefore || executions === null) return false;
    const status = ctx.session.transactionStatus;
    const keys = executions.parsed
      .filter((sql) => MAY_HAVE_KEY.test(sql))
      .map((sql) => extractCommentKey(sql))
      .filter((k) => k.kind !== 'none');
    const invalid = keys.find((k) => k.kind === 'invalid');
    if (invalid?.kind === 'invalid') return this.reject(ctx, invalidKeyError(invalid.reason));
    const key = keys[0];
    if (key?.kind === 'key') {
      if (status !== 'I') {
        return this.reject(
          ctx,
          keyNotSupportedError(
            'a pgward_key comment keys an autocommit statement; in a transaction use set_config',
          ),
        );
      }
      const only = executions.runs.length === 1 ? executions.runs[0]! : null;
      if (only === null || keys.length > 1)
        return this.reject(ctx, keyNotSupportedError('one keyed statement per batch'));
      const text = stripKeyComment(only.sql);
      const kind = classify(text);
      if (kind.kind !== 'write' && kind.kind !== 'read')
        return this.reject(ctx, keyNotSupportedError(describe(kind)));
      const keyed = {
        key: key.key,
        fingerprint: fingerprint({ sql: text, params: only.params, paramFormats: only.formats }),
      };
      return this.runWrapped(ctx, track, {
        protocol: 'extended',
        text,
        statementCount: 1,
        batch: request.messages,
        keyed,
      });
    }
    if (status === 'T') {
      for (const run of executions.runs) {
        if (!MAY_SET_KEY.test(run.sql)) continue;
        const setKey = recognizeSetConfigKey(run.sql);
        if (setKey.kind === 'invalid') return this.reject(ctx, invalidKeyError(setKey.reason));
        if (setKey.kind === 'param' || setKey.kind === 'literal') {
          const value = setKey.kind === 'literal' ? setKey.key : run.params[setKey.index - 1];
          if (typeof value !== 'string' && !(value instanceof Uint8Array)) {
            return this.reject(ctx, invalidKeyError('the idempotency key parameter is missing or NULL'));
          }
          const keyText = typeof value === 'string' ? value : Buffer.from(value).toString('utf8');
          return this.claimTransactionKey(
            ctx,
            track,
            request.messages.map((m) => m.raw),
            keyText,
          );
        }
      }
      const commits = executions.runs.some((r) => MAY_COMMIT.test(r.sql) && isCommit(classify(r.sql)));
      if (commits && this.fencesCommits(track)) {
        return this.fencedCommit(
          ctx,
          track,
          request.messages.map((m) => m.raw),
        );
      }
      return false;
    }
    if (status !== 'I' || this.options.config.mode !== 'all' || executions.runs.length === 0) return false;
    const kinds = executions.runs.map((r) => classify(r.sql).kind);
    if (!kinds.every((k) => k === 'read' || k === 'write') || !kinds.includes('write')) return false;
    return this.runWrapped(ctx, track, {
      protocol: 'extended',
      text: '',
      statementCount: 0,
      batch: request.messages,
      keyed: null,
    });
  }

  /** The SQL each Execute of the batch runs, with its parameters; null when the batch cannot be read. */
  private readBatch(
    track: Track,
    messages: readonly HookMessage[],
  ): {
    parsed: string[];
    runs: Array<{ sql: string; params: Array<Buffer | null>; formats: number[] }>;
  } | null {
    const parsed: string[] = [];
    const runs: Array<{ sql: string; params: Array<Buffer | null>; formats: number[] }> = [];
    const local = new Map<string, string>();
    let bound: { sql: string; params: Array<Buffer | null>; formats: number[] } | null = null;
    try {
      for (const message of messages) {
        const view: MessageView = { buffer: message.raw, bodyStart: 5, end: message.raw.length };
        if (message.type === FrontendMessage.Parse) {
          const parse = decodeParse(view);
          parsed.push(parse.sql);
          local.set(parse.statement, parse.sql);
          if (parse.statement !== '') track.statements.set(parse.statement, parse.sql);
        } else if (message.type === FrontendMessage.Bind) {
          const bind = decodeBind(view);
          const sql = local.get(bind.statement) ?? track.statements.get(bind.statement);
          // An unnamed statement parsed in an earlier batch: unknown text, treated as a write.
          bound = { sql: sql ?? 'UNKNOWN STATEMENT', params: bind.params, formats: bind.paramFormats };
        } else if (message.type === FrontendMessage.Execute && bound !== null) {
          runs.push(bound);
        }
      }
    } catch {
      return null;
    }
    return { parsed, runs };
  }

  // ---- wrapped autocommit requests --------------------------------------------------

  private async runWrapped(ctx: RequestContext, track: Track, request: WrappedRequest): Promise<boolean> {
    const cap = this.options.config.maxStoredResultBytes;
    let ledgerInstalled = false;
    for (let attempt = 1; ; attempt++) {
      const backend = await ctx.backend();
      const keyed = request.keyed;
      const prefix =
        keyed === null ? 'BEGIN' : `BEGIN;${claimSql(track.scope, keyed.key, keyed.fingerprint)}`;
      const filter = new WrapFilter({
        protocol: request.protocol,
        prefix: request.protocol === 'simple' ? (keyed === null ? 1 : 2) : 1,
        clientAnswers: request.protocol === 'simple' ? request.statementCount : answeredCount(request.batch),
        fence: keyed === null,
        holdLimitBytes: cap,
        captureLimitBytes: keyed === null ? null : cap,
      });
      const messages =
        request.protocol === 'simple'
          ? [buildQuery(`${prefix};\n${request.text}\n;${keyed === null ? FENCE_SQL : ''}`)]
          : [
              buildQuery(prefix),
              ...request.batch.map((m) => m.raw),
              ...(keyed === null ? [buildQuery(FENCE_SQL)] : []),
            ];
      if (failpointsActive) await failpoint('before-fence');
      try {
        await backend.forward(messages, filter.filter);
      } catch (error) {
        if (!(error instanceof BackendLostError)) throw error;
        const flight: InFlight = { stage: 'before-commit', fence: null, keyed: keyed !== null };
        const outcome = await this.resolveLoss(ctx, backend, flight, keyed, track);
        if (
          outcome.verdict === 'not-committed' &&
          keyed !== null &&
          !filter.streamed &&
          ctx.session.pins.length === 0 &&
          attempt < MAX_KEYED_ATTEMPTS
        ) {
          continue;
        }
        return this.answerLoss(ctx, outcome, filter, request);
      }
      if (filter.prefixError !== null && keyed !== null && filter.prefixError === 'PW900') {
        await backend.query('ROLLBACK');
        return this.answerDuplicate(ctx, backend, track, keyed, request);
      }
      if (filter.prefixError !== null && LEDGER_MISSING.has(filter.prefixError) && !ledgerInstalled) {
        await backend.query('ROLLBACK');
        await installLedger(ownedSqlClient(backend));
        ledgerInstalled = true;
        this.options.logger.info('installed the pgward ledger on first keyed request', {
          database: ctx.session.database,
        });
        continue;
      }
      if (
        filter.finalStatus !== 'T' ||
        filter.clientFailed ||
        filter.prefixError !== null ||
        filter.fenceFailed
      ) {
        // The statement failed (its error is held or already streamed): end the transaction.
        return this.finish(ctx, backend, 'ROLLBACK', filter.takeHeld());
      }
      let fence: Fence | null = null;
      let commitSql = 'COMMIT';
      if (keyed === null) {
        fence = parseFence(filter.fenceRow);
      } else {
        commitSql = `${completeSql(track.scope, keyed.key, {
          commandTag: filter.commandTag,
          rowDescription: filter.rowDescription,
          dataRows: filter.captureTruncated ? null : filter.capturedRows(),
          truncated: filter.captureTruncated,
        })};COMMIT`;
      }
      if (failpointsActive) await failpoint('between-fence-and-commit');
      track.commitInFlight = true;
      try {
        return await this.finish(ctx, backend, commitSql, filter.peekHeld());
      } catch (error) {
        if (!(error instanceof BackendLostError)) throw error;
        const flight: InFlight = { stage: 'commit-sent', fence, keyed: keyed !== null };
        const outcome = await this.resolveLoss(ctx, backend, flight, keyed, track);
        if (
          outcome.verdict === 'not-committed' &&
          keyed !== null &&
          !filter.streamed &&
          ctx.session.pins.length === 0 &&
          attempt < MAX_KEYED_ATTEMPTS
        ) {
          continue;
        }
        return this.answerLoss(ctx, outcome, filter, request);
      } finally {
        track.commitInFlight = false;
      }
    }
  }

  /**
   * Sends `sql` (which ends the transaction) as a client-owned Query, so the session
   * sees the ReadyForQuery and its transaction status; the client gets `prepend` and
   * that ReadyForQuery, or the error if `sql` failed.
   */
  private async finish(
    ctx: RequestContext,
    backend: BackendChannel,
    sql: string,
    prepend: Buffer,
  ): Promise<boolean> {
    let error: Buffer | null = null;
    let failedStatus = false;
    const commits = sql.endsWith('COMMIT');
    /** A WARNING with the COMMIT (a cancelled synchronous-replication wait?): the answer waits, see ackAfterWarning. */
    let warned = false;
    let heldAnswer: Buffer | null = null;
    const pending = backend.forward([buildQuery(sql)], (type, message) => {
      if (type === BackendMessage.ErrorResponse) {
        error ??= Buffer.from(message);
        return null;
      }
      if (type === BackendMessage.ReadyForQuery) {
        if (message[5] === TransactionStatus.Failed) {
          failedStatus = true;
          return null;
        }
        const answer = Buffer.concat([error ?? prepend, message]);
        if (!warned || error !== null) return answer;
        heldAnswer = answer;
        return null;
      }
      if (type === BackendMessage.NoticeResponse) {
        if (commits && !warned && isWarning(message)) {
          warned = true;
          return null;
        }
        return message;
      }
      return null;
    });
    if (failpointsActive && sql.endsWith('COMMIT')) {
      // The loss may happen while paused: its rejection is awaited right after.
      pending.catch(() => {});
      await failpoint('commit-sent');
    }
    await pending;
    if (failedStatus) return this.finish(ctx, backend, 'ROLLBACK', error ?? prepend);
    if (heldAnswer !== null) return this.ackAfterWarning(ctx, backend, heldAnswer);
    return true;
  }

  /** Answers a keyed request whose key already committed, from the ledger, without running it. */
  private async answerDuplicate(
    ctx: RequestContext,
    backend: BackendChannel,
    track: Track,
    keyed: KeyedRequest,
    request: WrappedRequest,
  ): Promise<boolean> {
    const stored = await lookup(backend, track.scope, keyed.key);
    if (stored === null) {
      // Claimed by a transaction that then rolled back between our claim and lookup: run again.
      return this.runWrapped(ctx, track, request);
    }
    return this.deliver(ctx, backend, this.storedReply(stored, keyed, request));
  }

  private storedReply(stored: StoredRow, keyed: KeyedRequest, request: WrappedRequest): Buffer {
    if (stored.fingerprint !== keyed.fingerprint) return errorBytes(keyReusedError(keyed.key));
    if (stored.truncated || stored.commandTag === null)
      return errorBytes(keyAlreadyCommittedError(keyed.key));
    const rows = stored.dataRows ?? Buffer.alloc(0);
    const complete = buildCommandComplete(stored.commandTag);
    if (request.protocol === 'simple') {
      return Buffer.concat([stored.rowDescription ?? Buffer.alloc(0), rows, complete]);
    }
    const parts: Buffer[] = [];
    for (const message of request.batch) {
      switch (message.type) {
        case FrontendMessage.Parse:
          parts.push(PARSE_COMPLETE);
          break;
        case FrontendMessage.Bind:
          parts.push(BIND_COMPLETE);
          break;
        case FrontendMessage.Close:
          parts.push(CLOSE_COMPLETE);
          break;
        case FrontendMessage.Describe: {
          const target = decodeDescribe({ buffer: message.raw, bodyStart: 5, end: message.raw.length });
          if (target.target === TargetKind.Statement) return errorBytes(keyAlreadyCommittedError(keyed.key));
          parts.push(stored.rowDescription ?? NO_DATA);
          break;
        }
        case FrontendMessage.Execute:
          parts.push(rows, complete);
          break;
      }
    }
    return Buffer.concat(parts);
  }

  /** Sends `bytes` then a ReadyForQuery that passes through the session (an empty Query's). */
  private async deliver(_ctx: RequestContext, backend: BackendChannel, bytes: Buffer): Promise<boolean> {
    await backend.forward([buildQuery('')], (type, message) => {
      if (type === BackendMessage.ReadyForQuery) return Buffer.concat([bytes, message]);
      return type === BackendMessage.NoticeResponse ? message : null;
    });
    return true;
  }

  private async reject(ctx: RequestContext, error: ErrorReply): Promise<boolean> {
    if (ctx.session.transactionStatus === 'I') {
      ctx.sendToClient(Buffer.concat([errorBytes(error), buildReadyForQuery(TransactionStatus.Idle)]));
      return true;
    }
    // Inside a transaction the error must abort it, as any PostgreSQL error would.
    const backend = await ctx.backend();
    await backend.forward([buildQuery(raiseSql(error))]);
    return true;
  }

  // ---- transactions -----------------------------------------------------------------

  /**
   * set_config('pgward.idempotency_key', ..., true): the claim goes out just before
   * the client's statement, in the same transaction. A failed claim aborts the
   * transaction; the client's statement then reports why (PW004 for a key that
   * already committed) and the transaction is in the failed state, as after any error.
   * A simple-protocol statement (`clientSql`) shares one Query with the claim: one
   * message and one ReadyForQuery less per keyed transaction. The claim's answer then
   * ends at its CommandComplete, and an error before it may be the client text's own
   * syntax error, so other errors than the ledger's reach the client as PostgreSQL sent them.
   */
  private async claimTransactionKey(
    ctx: RequestContext,
    track: Track,
    messages: Buffer[],
    key: string,
    clientSql: string | null = null,
  ): Promise<boolean> {
    const backend = await ctx.backend();
    const claim = claimSql(track.scope, key, TRANSACTION_KEY_FINGERPRINT);
    const merged = clientSql !== null;
    const sent = merged ? [buildQuery(`${claim};\n${clientSql}`)] : [buildQuery(claim), ...messages];
    let phase: 'claim' | 'client' = 'claim';
    let claimError: Buffer | null = null;
    const claiming = backend.forward(sent, (type, message) => {
      if (type === BackendMessage.NoticeResponse || type === BackendMessage.NotificationResponse)
        return message;
      if (phase === 'claim') {
        if (type === (merged ? BackendMessage.CommandComplete : BackendMessage.ReadyForQuery))
          phase = 'client';
        else if (type === BackendMessage.ErrorResponse) {
          const code = sqlstateOf(message);
          if (merged && code !== 'PW900' && !LEDGER_MISSING.has(code)) claimError = Buffer.from(message);
          else
            claimError = errorBytes(
              code === 'PW900'
                ? keyAlreadyCommittedError(key)
                : invalidKeyError(
                    LEDGER_MISSING.has(code)
                      ? "the pgward ledger is not installed in this database (the primary's sidecar installs it)"
                      : `the ledger could not claim the key (SQLSTATE ${code})`,
                  ),
            );
          // The rest of the merged Query is skipped: its ReadyForQuery comes next.
          if (merged) phase = 'client';
        }
        return null;
      }
      if (claimError === null) return message;
      if (type === BackendMessage.ReadyForQuery) {
        const out = Buffer.concat([claimError, message]);
        claimError = Buffer.alloc(0);
        return out;
      }
      // The client's statements fail with 25P02 after the failed claim: the claim's error replaces them.
      return null;
    });
    try {
      await claiming;
    } catch (error) {
      if (!(error instanceof BackendLostError)) throw error;
      // Nothing in a claim commits: the open transaction is definitely not committed
      // (40001, as for any loss inside a transaction), never of unknown outcome.
      return this.abortLostTransaction(ctx);
    }
    if (claimError === null) track.transactionKey = key;
    return true;
  }

  /**
   * The backend of an open transaction was lost while nothing that commits was in
   * flight: the client gets 40001 and its session is in a failed transaction on the
   * new primary (so its next statements fail and its ROLLBACK works, as after any
   * error), or FATAL 57P01 when it held state that could not move.
   */
  private async abortLostTransaction(ctx: RequestContext): Promise<boolean> {
    const response = respond('not-committed', ctx.session.pins);
    if (response.kind !== 'error') throw new Error('a not-committed verdict must answer with an error');
    if (response.error.severity === 'FATAL') return this.close(ctx, response.error);
    const backend = await ctx.backend();
    await backend.forward([buildQuery(`BEGIN;${raiseSql(response.error)}`)], (type, message) =>
      type === BackendMessage.CommandComplete ? null : message,
    );
    return true;
  }

  /** A client COMMIT: read the fence, then forward the COMMIT; resolve the outcome if the backend is lost. */
  private async fencedCommit(ctx: RequestContext, track: Track, messages: Buffer[]): Promise<boolean> {
    const backend = await ctx.backend();
    const keyed: KeyedRequest | null =
      track.transactionKey === null ? null : { key: track.transactionKey, fingerprint: '' };
    if (!failpointsActive) return this.pipelinedCommit(ctx, track, backend, messages, keyed);
    await failpoint('before-fence');
    let fence: Fence;
    try {
      fence = parseFence((await backend.query(FENCE_SQL)).rows[0] ?? null);
    } catch (error) {
      if (error instanceof OwnedQueryError) return false;
      if (!(error instanceof BackendLostError)) throw error;
      const outcome = await this.resolveLoss(
        ctx,
        backend,
        { stage: 'before-commit', fence: null, keyed: false },
        null,
        track,
      );
      return this.answerCommitLoss(ctx, outcome, false);
    }
    if (failpointsActive) await failpoint('between-fence-and-commit');
    let completed = false;
    track.commitInFlight = true;
    try {
      const pending = backend.forward(messages, (type, message) => {
        if (type === BackendMessage.CommandComplete) completed = true;
        return message;
      });
      if (failpointsActive) {
        pending.catch(() => {});
        await failpoint('commit-sent');
      }
      await pending;
      return true;
    } catch (error) {
      if (!(error instanceof BackendLostError)) throw error;
      const flight: InFlight = { stage: 'commit-sent', fence, keyed: keyed !== null };
      const outcome = await this.resolveLoss(ctx, backend, flight, keyed, track);
      return this.answerCommitLoss(ctx, outcome, completed);
    } finally {
      track.commitInFlight = false;
    }
  }

  /**
   * The fence and the COMMIT in one write: PostgreSQL answers the fence Query and
   * flushes it at its ReadyForQuery before it reads the COMMIT, so the pair is on
   * the wire before the commit starts. If the connection dies and the pair never
   * arrived, the COMMIT may have run: the outcome is then unknown unless a key decides it.
   * A keyed transaction sends no fence: its key row, committed with the work, decides
   * the outcome (outcome.ts never reads the fence of a keyed flight).
   */
  private async pipelinedCommit(
    ctx: RequestContext,
    track: Track,
    backend: BackendChannel,
    messages: Buffer[],
    keyed: KeyedRequest | null,
  ): Promise<boolean> {
    let fenceRow: Array<string | null> | null = null;
    let fenceAnswered = keyed !== null;
    let completed = false;
    /** From a WARNING on (a cancelled synchronous-replication wait says so): held back, see below. */
    let held: Array<{ type: number; message: Buffer }> | null = null;
    track.commitInFlight = true;
    try {
      const sent = keyed === null ? [buildQuery(FENCE_SQL), ...messages] : messages;
      await backend.forward(sent, (type, message) => {
        if (fenceAnswered) {
          if (held === null && type === BackendMessage.NoticeResponse && isWarning(message)) held = [];
          if (held !== null) {
            held.push({ type, message: Buffer.from(message) });
            return null;
          }
          if (type === BackendMessage.CommandComplete) completed = true;
          return message;
        }
        if (type === BackendMessage.DataRow) fenceRow = decodeTextRow(message);
        else if (type === BackendMessage.ReadyForQuery) fenceAnswered = true;
        else if (type === BackendMessage.NoticeResponse) return message;
        return null;
      });
      if (held === null) return true;
      const messagesHeld: ReadonlyArray<{ type: number; message: Buffer }> = held;
      const committed =
        messagesHeld.some((m) => m.type === BackendMessage.CommandComplete) &&
        !messagesHeld.some((m) => m.type === BackendMessage.ErrorResponse);
      const answer = messagesHeld.filter(
        (m) => !(committed && m.type === BackendMessage.NoticeResponse && isWarning(m.message)),
      );
      const bytes = Buffer.concat(answer.map((m) => m.message));
      if (committed) return await this.ackAfterWarning(ctx, backend, bytes);
      ctx.sendToClient(bytes);
      return true;
    } catch (error) {
      if (!(error instanceof BackendLostError)) throw error;
      const fence = fenceRow === null ? null : parseFence(fenceRow);
      const flight: InFlight =
        keyed !== null
          ? { stage: 'commit-sent', fence: null, keyed: true }
          : fence === null
            ? { stage: 'unfenced', fence: null, keyed: false }
            : { stage: 'commit-sent', fence, keyed: false };
      const outcome = await this.resolveLoss(ctx, backend, flight, keyed, track);
      return this.answerCommitLoss(ctx, outcome, completed);
    } finally {
      track.commitInFlight = false;
    }
  }

  /**
   * A WARNING came with the commit: if it was PostgreSQL cancelling the wait for
   * synchronous replication (pg_cancel_backend; statement_timeout is off during
   * COMMIT), the commit is only local. Which WARNING it was is not decided on
   * message text: any WARNING with a successful COMMIT costs one bounded wait for
   * the synchronous standbys (immediate when they are healthy). Flushed: the client
   * gets the held answer (without that warning); not within the bound: 08007.
   */
  private async ackAfterWarning(
    ctx: RequestContext,
    backend: BackendChannel,
    answer: Buffer,
  ): Promise<boolean> {
    const deadline = Date.now() + this.options.config.resolveTimeoutMs;
    if (!(await waitSyncFlushed(backend, deadline))) {
      const response = respond('unknown', ctx.session.pins);
      if (response.kind === 'error') return this.close(ctx, response.error);
    }
    ctx.sendToClient(answer);
    return true;
  }

  private async answerCommitLoss(
    ctx: RequestContext,
    outcome: Resolution,
    commandCompleteSent: boolean,
  ): Promise<boolean> {
    const response = respond(outcome.verdict, ctx.session.pins);
    if (response.kind === 'success') {
      const bytes = commandCompleteSent ? Buffer.alloc(0) : buildCommandComplete('COMMIT');
      await this.deliver(ctx, outcome.backend!, bytes);
      if (response.thenClose) return this.close(ctx, response.thenClose);
      return true;
    }
    if (response.error.severity === 'FATAL') return this.close(ctx, response.error);
    await this.deliver(ctx, outcome.backend!, errorBytes(response.error));
    return true;
  }

  private async answerLoss(
    ctx: RequestContext,
    outcome: Resolution,
    filter: WrapFilter,
    request: WrappedRequest,
  ): Promise<boolean> {
    const response = respond(outcome.verdict, ctx.session.pins);
    if (response.kind === 'success') {
      let bytes = filter.takeHeld();
      if (request.keyed !== null && outcome.stored !== null && !filter.streamed) {
        bytes = this.storedReply(outcome.stored, request.keyed, request);
      }
      await this.deliver(ctx, outcome.backend!, bytes);
      if (response.thenClose) return this.close(ctx, response.thenClose);
      return true;
    }
    if (response.error.severity === 'FATAL') return this.close(ctx, response.error);
    await this.deliver(ctx, outcome.backend!, errorBytes(response.error));
    return true;
  }

  /** Tells the client (this one FATAL) and ends the session. */
  private close(ctx: RequestContext, error: ErrorReply): true {
    ctx.close(error.code, error.message, error.detail);
    return true;
  }

  // ---- outcome resolution -----------------------------------------------------------

  private async resolveLoss(
    ctx: RequestContext,
    lost: BackendChannel,
    flight: InFlight,
    keyed: KeyedRequest | null,
    track: Track,
  ): Promise<Resolution> {
    const deadline = Date.now() + this.options.config.resolveTimeoutMs;
    for (;;) {
      if (Date.now() > deadline) return { verdict: 'unknown', backend: null, stored: null };
      let backend: BackendChannel;
      try {
        backend = await ctx.backend();
      } catch (error) {
        this.options.logger.warn('no primary to resolve an in-flight commit', { error: String(error) });
        return { verdict: 'unknown', backend: null, stored: null };
      }
      const view = this.options.topology.current();
      const samePrimary =
        backend.term === lost.term &&
        backend.endpoint.host === lost.endpoint.host &&
        backend.endpoint.port === lost.endpoint.port;
      const facts: Facts = {
        samePrimary,
        promotedAtLsn: view.term === backend.term ? view.promotedAtLsn : null,
      };
      let stored: StoredRow | null = null;
      try {
        for (let step = 0; step < 8; step++) {
          const next = resolve(flight, facts);
          if (next.kind === 'verdict') {
            this.options.logger.info('resolved an in-flight commit', {
              verdict: next.verdict,
              reason: next.reason,
              keyed: flight.keyed,
              stage: flight.stage,
            });
            return { verdict: next.verdict, backend, stored };
          }
          if (next.question === 'sync-flushed') facts.syncFlushed = await waitSyncFlushed(backend, deadline);
          else if (next.question === 'xact-status')
            facts.xactStatus = await xactStatus(backend, flight.fence!.xid!);
          else if (next.question === 'terminate-old-backend') {
            await terminateAndWait(backend, lost.backendPid);
            facts.oldBackendTerminated = true;
            delete facts.xactStatus;
          } else {
            stored = keyed === null ? null : await lookup(backend, track.scope, keyed.key);
            facts.keyRow = stored === null ? 'absent' : 'present';
          }
        }
        throw new Error('outcome resolution did not converge');
      } catch (error) {
        if (!(error instanceof BackendLostError)) throw error;
        // The backend used for resolving died too (a second failover): start over on the next one.
      }
    }
  }
}

interface Resolution {
  verdict: Verdict;
  /** The backend the verdict was reached on; null when none could be had. */
  backend: BackendChannel | null;
  /** Keyed: the ledger row found while resolving. */
  stored: StoredRow | null;
}

function answeredCount(batch: readonly HookMessage[]): number {
  return batch.filter(
    (m) =>
      m.type === FrontendMessage.Parse ||
      m.type === FrontendMessage.Bind ||
      m.type === FrontendMessage.Describe ||
      m.type === FrontendMessage.Execute ||
      m.type === FrontendMessage.Close,
  ).length;
}

function everyStatementWrappable(sql: string): boolean {
  return statements(tokenize(sql)).every((tokens) => {
    const kind = classifyStatement(tokens).kind;
    return kind === 'read' || kind === 'write';
  });
}

function isCommit(kind: StatementClass): boolean {
  return kind.kind === 'transaction' && kind.verb === 'commit';
}

/** Whether a request lost on the default path may have committed. */
function mayCommit(request: ClientRequest | null, inTransaction: boolean, track: Track): boolean {
  if (request === null) return !inTransaction;
  const texts =
    request.kind === 'query'
      ? [request.sql]
      : request.messages.filter((m) => m.type === FrontendMessage.Parse).map((m) => parseText(m.raw));
  if (request.kind === 'batch' && texts.length === 0 && track.statements.size === 0) return true;
  return texts.some((sql) => {
    const kind = classify(sql);
    if (kind.kind === 'read' || kind.kind === 'session' || kind.kind === 'empty') return false;
    if (kind.kind === 'transaction') return kind.verb === 'commit' || kind.verb === 'commit-prepared';
    // Inside a transaction a write is not committed by itself; outside it commits at once.
    return !inTransaction || kind.kind === 'multi' || kind.kind === 'unwrappable';
  });
}

function parseText(raw: Buffer): string {
  try {
    return decodeParse({ buffer: raw, bodyStart: 5, end: raw.length }).sql;
  } catch {
    return '';
  }
}

function describe(kind: StatementClass): string {
  switch (kind.kind) {
    case 'multi':
      return `the text has ${kind.count} statements; a key covers exactly one`;
    case 'transaction':
      return 'transaction control statements cannot be keyed';
    case 'unwrappable':
      return kind.reason;
    case 'session':
      return 'session statements (SET, LISTEN, ...) have no outcome to protect';
    default:
      return 'the statement is empty';
  }
}

function parseFence(row: ReadonlyArray<string | null> | null): Fence {
  if (row === null || row.length !== 2 || row[1] === null || row[1] === undefined) {
    throw new Error('the commit fence returned no row');
  }
  return {
    xid: row[0] === null || row[0] === undefined ? null : BigInt(row[0]),
    insertLsn: parseLsn(row[1]),
  };
}

async function xactStatus(backend: BackendChannel, xid: bigint): Promise<XactStatus> {
  try {
    const value = (await backend.query(xactStatusSql(xid))).rows[0]?.[0] ?? null;
    return value === 'committed' || value === 'aborted' || value === 'in progress' ? value : null;
  } catch (error) {
    // "transaction ID ... is in the future" and friends: the status cannot be told.
    if (error instanceof OwnedQueryError) return null;
    throw error;
  }
}

/**
 * Waits until the synchronous standbys flushed the primary's WAL as far as it
 * reached when the wait began (past the commit found committed), or the deadline.
 * The rule is re-read at each poll: the sidecar may change the quorum meanwhile.
 */
async function waitSyncFlushed(backend: BackendChannel, deadlineMs: number): Promise<boolean> {
  let target: bigint | null = null;
  for (;;) {
    let rows: readonly (readonly (string | null)[])[];
    try {
      rows = (await backend.query(STANDBY_FLUSH_SQL)).rows;
    } catch (error) {
      if (error instanceof OwnedQueryError) return false;
      throw error;
    }
    const first = rows[0];
    if (first === undefined || first[1] === null || first[1] === undefined) return false;
    target ??= parseLsn(first[1]);
    const standbys: StandbyFlush[] = rows
      .filter((row) => row[2] !== null && row[2] !== undefined)
      .map((row) => ({ syncState: row[2]!, flushLsn: row[3] ? parseLsn(row[3]) : null }));
    if (syncFlushed(target, requiredSyncStandbys(first[0] ?? ''), standbys)) return true;
    if (Date.now() >= deadlineMs) return false;
    await new Promise((resolveWait) => setTimeout(resolveWait, SYNC_FLUSH_POLL_MS));
  }
}

function isWarning(notice: Buffer): boolean {
  const fields = decodeErrorResponse({ buffer: notice, bodyStart: 5, end: notice.length });
  return (fields.severityNonLocalized ?? fields.severity) === 'WARNING';
}

async function terminateAndWait(backend: BackendChannel, pid: number): Promise<void> {
  await backend.query(terminateBackendSql(pid));
  const deadline = Date.now() + TERMINATE_WAIT_MS;
  while (Date.now() < deadline) {
    const alive = (await backend.query(backendAliveSql(pid))).rows[0]?.[0];
    if (alive === '0') return;
    await new Promise((resolveWait) => setTimeout(resolveWait, TERMINATE_POLL_MS));
  }
  throw new Error(`backend ${pid} did not exit within ${TERMINATE_WAIT_MS} ms of pg_terminate_backend`);
}

async function lookup(backend: BackendChannel, scope: string, key: string): Promise<StoredRow | null> {
  const row = (await backend.query(lookupSql(scope, key))).rows[0];
  if (row === undefined) return null;
  return {
    fingerprint: row[0] ?? '',
    commandTag: row[1] ?? null,
    rowDescription: parseByteaHex(row[2]),
    dataRows: parseByteaHex(row[3]),
    truncated: row[4] === 'true',
  };
}

function errorBytes(error: ErrorReply): Buffer {
  return buildErrorResponse({
    severity: error.severity,
    code: error.code,
    message: error.message,
    ...(error.detail === undefined ? {} : { detail: error.detail }),
    ...(error.hint === undefined ? {} : { hint: error.hint }),
  });
}

/** A statement that makes PostgreSQL itself raise `error`, so the transaction aborts as with any error. */
function raiseSql(error: ErrorReply): string {
  const hint = error.hint === undefined ? '' : `, HINT = ${textLiteral(error.hint)}`;
  return (
    `DO $pgward$ BEGIN RAISE EXCEPTION USING ERRCODE = '${error.code}', ` +
    `MESSAGE = ${textLiteral(error.message)}${hint}; END $pgward$`
  );
}

/** The ledger installer over a proxy-owned backend connection (simple protocol, no parameters). */
function ownedSqlClient(backend: BackendChannel): SqlClient {
  return {
    async query(sql: string, params?: unknown[]) {
      if (params !== undefined && params.length > 0) throw new Error('owned queries take no parameters here');
      const result = await backend.query(sql);
      return {
        rows: result.rows.map((values) =>
          Object.fromEntries(result.columns.map((c, i) => [c, values[i] ?? null])),
        ),
      };
    },
  };
}
