// Errors the user can fix. The CLI prints their message as one line and exits
// non-zero, without a stack trace; anything else is a bug and keeps its stack.
export class UserError extends Error {
  override readonly name = 'UserError';

  /** `problem` says what is wrong, `fix` what to do about it; both end up on one line. */
  constructor(problem: string, fix: string) {
    super(`${problem}; fix: ${fix}`);
  }
}

export function isUserError(error: unknown): error is UserError {
  return error instanceof UserError;
}
