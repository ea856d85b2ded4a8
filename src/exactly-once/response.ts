// What the client is told after a backend loss (reference/exactly-once.md §5.7)
// and the pgward-specific SQLSTATEs of keyed requests. Codes in class PW are
// outside PostgreSQL's namespace; drivers pass unknown codes through verbatim.

import { type PinKind, pinnedSessionLost } from '../proxy/session-pins.ts';
import type { Verdict } from './outcome.ts';

export const SQLSTATE = {
  /** Definitely not committed: retry the whole transaction. */
  serializationFailure: '40001',
  /** Outcome cannot be determined: the connection closes. */
  transactionResolutionUnknown: '08007',
  /** Session state cannot move to the new primary: reconnect. */
  adminShutdown: '57P01',
  /** The idempotency key was used before for a different request. */
  keyReused: 'PW001',
  /** The idempotency key is malformed. */
  invalidKey: 'PW002',
  /** A key on a statement that cannot be made exactly-once (multi-statement, COPY, VACUUM, ...). */
  keyNotSupported: 'PW003',
  /** The keyed transaction already committed; it was not run again. */
  keyAlreadyCommitted: 'PW004',
} as const;

export interface ErrorReply {
  severity: 'ERROR' | 'FATAL';
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

export type ClientResponse =
  /** Answer the in-flight request as if nothing happened (synthesize the completion). */
  | { kind: 'success'; thenClose?: ErrorReply }
  /** Send the error; FATAL errors close the connection afterwards. */
  | { kind: 'error'; error: ErrorReply };

/** `pins`: what the session held that cannot move to another backend (SessionInfo.pins). */
export function respond(verdict: Verdict, pins: readonly PinKind[]): ClientResponse {
  const stuck = pins.length > 0 ? pinnedError(pins) : null;
  switch (verdict) {
    case 'committed':
      return stuck === null ? { kind: 'success' } : { kind: 'success', thenClose: stuck };
    case 'not-committed':
      return {
        kind: 'error',
        error: stuck ?? {
          severity: 'ERROR',
          code: SQLSTATE.serializationFailure,
          message: 'the transaction was aborted by a primary failover; nothing was committed',
          hint: 'It is safe to retry the whole transaction.',
        },
      };
    case 'unknown':
      return {
        kind: 'error',
        error: {
          severity: 'FATAL',
          code: SQLSTATE.transactionResolutionUnknown,
          message:
            'the connection to the primary was lost while committing; the outcome cannot be determined',
          hint: 'Check whether the transaction took effect before retrying, or use an idempotency key (pgward_key).',
        },
      };
  }
}

function pinnedError(pins: readonly PinKind[]): ErrorReply {
  return { severity: 'FATAL', code: SQLSTATE.adminShutdown, ...pinnedSessionLost(pins) };
}

export function keyReusedError(key: string): ErrorReply {
  return {
    severity: 'ERROR',
    code: SQLSTATE.keyReused,
    message: `idempotency key "${key}" was already used for a different request`,
    detail: 'The stored request fingerprint differs from this one; the request was not run.',
    hint: 'Use a new key for every distinct request.',
  };
}

export function invalidKeyError(reason: string): ErrorReply {
  return { severity: 'ERROR', code: SQLSTATE.invalidKey, message: `invalid idempotency key: ${reason}` };
}

export function keyNotSupportedError(reason: string): ErrorReply {
  return {
    severity: 'ERROR',
    code: SQLSTATE.keyNotSupported,
    message: `an idempotency key cannot be used on this statement: ${reason}`,
    hint: 'Send the keyed statement on its own, as a single autocommit statement.',
  };
}

export function keyAlreadyCommittedError(key: string): ErrorReply {
  return {
    severity: 'ERROR',
    code: SQLSTATE.keyAlreadyCommitted,
    message: `the transaction with idempotency key "${key}" already committed; it was not run again`,
    hint: 'Treat this as success: roll back this transaction and move on.',
  };
}
