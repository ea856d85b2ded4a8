import { SqlState } from './sqlstate.ts';

/**
 * A peer broke the protocol. Every codec function reports bad input with this (never a generic
 * Error), so a session can answer with a FATAL ErrorResponse carrying `code` and close; any other
 * exception out of the codec is a bug.
 */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  /** SQLSTATE for the ErrorResponse: 08P01 unless the violation is about authentication. */
  readonly code: string;

  constructor(message: string, code: string = SqlState.ProtocolViolation) {
    super(message);
    this.code = code;
  }
}

export function isProtocolError(error: unknown): error is ProtocolError {
  return error instanceof ProtocolError;
}
