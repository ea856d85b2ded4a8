import { SqlState } from './sqlstate.ts';

/**
 * A peer broke the protocol. Every codec function reports bad input with this (never a generic
 * Error), so a session can answer with a FATAL ErrorResponse carrying `code` and close; any other
 * exception out of the codec is a bug.
 */
export class ProtocolError extends Error {
  /** SQLSTATE for the ErrorResponse: 08P01 unless the violation is about authentication. */
  readonly code: string;

  constructor(message: string, code: string = SqlState.ProtocolViolation) {
    // Bad input from the network is routine, not a bug: capturing a stack for each would make
    // garbage cheap to send and expensive to refuse.
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message);
    Error.stackTraceLimit = stackTraceLimit;
    this.code = code;
  }

  override get name(): string {
    return 'ProtocolError';
  }
}

export function isProtocolError(error: unknown): error is ProtocolError {
  return error instanceof ProtocolError;
}
