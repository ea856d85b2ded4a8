// Session state that cannot move to another server: temp tables, session-level
// advisory locks, LISTEN registrations and WITH HOLD cursors live only in the
// backend process that created them. A session holding any of them gets
// FATAL 57P01 after a failover instead of silently continuing without them.
// Tracking is conservative: once set, a flag clears only on an explicit release
// that surely drops everything of its kind (DISCARD ALL, UNLISTEN *, CLOSE ALL,
// pg_advisory_unlock_all()).
import { keyword, statements, type Token, tokenize } from './lexer.ts';

export interface PinnedState {
  tempTables: boolean;
  advisoryLocks: boolean;
  listening: boolean;
  holdCursors: boolean;
}

export const UNPINNED: PinnedState = Object.freeze({
  tempTables: false,
  advisoryLocks: false,
  listening: false,
  holdCursors: false,
});

const SESSION_LOCK_FUNCTIONS = new Set([
  'PG_ADVISORY_LOCK',
  'PG_ADVISORY_LOCK_SHARED',
  'PG_TRY_ADVISORY_LOCK',
  'PG_TRY_ADVISORY_LOCK_SHARED',
]);

/** The state after the statements of `sql` ran successfully in a session that was in `state`. */
export function applySessionEffects(state: PinnedState, sql: string): PinnedState {
  let next = state;
  for (const tokens of statements(tokenize(sql))) next = applyStatement(next, tokens);
  return next;
}

function applyStatement(state: PinnedState, tokens: readonly Token[]): PinnedState {
  const words = tokens.map(keyword);
  const [first, second] = words;
  if (first === 'DISCARD' && (second === 'ALL' || second === 'TEMP' || second === 'TEMPORARY')) {
    return second === 'ALL' ? UNPINNED : { ...state, tempTables: false };
  }
  let next = state;
  const createsTemp =
    (first === 'CREATE' || first === 'SELECT') &&
    words.some((w) => w === 'TEMP' || w === 'TEMPORARY') &&
    words.some((w) => w === 'TABLE' || w === 'VIEW' || w === 'SEQUENCE' || w === 'INTO');
  if (createsTemp) next = { ...next, tempTables: true };
  if (first === 'LISTEN') next = { ...next, listening: true };
  if (first === 'UNLISTEN' && tokens[1]?.text === '*') next = { ...next, listening: false };
  if (first === 'DECLARE' && words.includes('WITH') && words.includes('HOLD'))
    next = { ...next, holdCursors: true };
  if (first === 'CLOSE' && second === 'ALL') next = { ...next, holdCursors: false };
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i + 1]?.text !== '(') continue;
    const word = words[i];
    if (word !== null && word !== undefined && SESSION_LOCK_FUNCTIONS.has(word))
      next = { ...next, advisoryLocks: true };
    if (word === 'PG_ADVISORY_UNLOCK_ALL') next = { ...next, advisoryLocks: false };
  }
  return next;
}

export function isPinned(state: PinnedState): boolean {
  return state.tempTables || state.advisoryLocks || state.listening || state.holdCursors;
}

/** Human-readable list of what pins the session, for the FATAL message. */
export function describePinned(state: PinnedState): string {
  const parts: string[] = [];
  if (state.tempTables) parts.push('temporary tables');
  if (state.advisoryLocks) parts.push('session advisory locks');
  if (state.listening) parts.push('LISTEN registrations');
  if (state.holdCursors) parts.push('WITH HOLD cursors');
  return parts.join(', ');
}
