// Session state that pins a client to its PostgreSQL backend process: it exists
// only there and the proxy cannot re-create it on another connection (a new
// primary after a failover, or the same server after a restart). SET parameters
// and protocol-level prepared statements are not here: the session replays those.
//
// Pure: `pinEffects` reads SQL text, `SessionPins` folds the effects of what the
// client sent with how its transactions ended. Conservative on purpose: a pin is
// taken as soon as a statement that may create the state is sent (even if it then
// fails), and dropped only by a release that surely ran and committed. A false pin
// costs a reconnect at the next failover; a missed one silently loses state.
import { keyword, statements, type Token, tokenize } from '../exactly-once/lexer.ts';

export type PinKind =
  /** Temporary tables, views, sequences, functions (anything in pg_temp). */
  | 'temp'
  /** Session-level advisory locks (the _xact_ forms end with the transaction). */
  | 'advisory'
  /** LISTEN registrations. */
  | 'listen'
  /** Cursors declared WITH HOLD (they outlive their transaction). */
  | 'hold-cursor'
  /** SQL-level PREPARE (protocol-level Parse is replayed by the session; these are not). */
  | 'sql-prepared'
  /** A statement the proxy could not inspect (too large to decode). */
  | 'uninspected';

export interface PinEffect {
  readonly op: 'acquire' | 'release';
  readonly kind: PinKind;
  /** The object's name (folded like PostgreSQL folds identifiers); '' = unnamed; null (release) = all of the kind. */
  readonly name: string | null;
}

const KIND_ORDER: readonly PinKind[] = [
  'temp',
  'advisory',
  'listen',
  'hold-cursor',
  'sql-prepared',
  'uninspected',
];

const DESCRIPTIONS: Record<PinKind, string> = {
  temp: 'temporary tables',
  advisory: 'session advisory locks',
  listen: 'LISTEN registrations',
  'hold-cursor': 'WITH HOLD cursors',
  'sql-prepared': 'SQL prepared statements (PREPARE)',
  uninspected: 'a statement too large for the proxy to inspect',
};

/**
 * Cheap prefilter: text that matches none of these words cannot pin or release
 * anything, so the lexer runs only on the few statements that can matter.
 */
const MAY_PIN = /temp|advisory|listen|hold|discard|close|prepare|deallocate|\bdo\b/i;

const SESSION_LOCKS = new Set([
  'pg_advisory_lock',
  'pg_advisory_lock_shared',
  'pg_try_advisory_lock',
  'pg_try_advisory_lock_shared',
]);

/** Inside a DO body the SQL is not lexed as statements: any of these words counts. */
const DO_BODY_PATTERNS: ReadonlyArray<readonly [PinKind, RegExp]> = [
  ['temp', /\btemp(orary)?\b|\bpg_temp/i],
  ['advisory', /pg_(try_)?advisory_lock(_shared)?\b/i],
  ['listen', /\blisten\b/i],
  ['hold-cursor', /\bwith\s+hold\b/i],
  ['sql-prepared', /\bprepare\b/i],
];

/** The pin effects of the statements of `sql`, in order. */
export function pinEffects(sql: string): PinEffect[] {
  if (!MAY_PIN.test(sql)) return [];
  const effects: PinEffect[] = [];
  for (const tokens of statements(tokenize(sql))) statementEffects(tokens, effects);
  return effects;
}

function statementEffects(tokens: readonly Token[], out: PinEffect[]): void {
  const words = tokens.map(keyword);
  const first = words[0];
  const acquire = (kind: PinKind, name = ''): void => {
    out.push({ op: 'acquire', kind, name });
  };
  const release = (kind: PinKind, name: string | null): void => {
    out.push({ op: 'release', kind, name });
  };
  switch (first) {
    case 'DISCARD':
      if (words[1] === 'ALL') for (const kind of KIND_ORDER) release(kind, null);
      else if (words[1] === 'TEMP' || words[1] === 'TEMPORARY') release('temp', null);
      return;
    case 'LISTEN':
      acquire('listen', identifier(tokens[1]));
      return;
    case 'UNLISTEN':
      release('listen', tokens[1]?.text === '*' ? null : identifier(tokens[1]));
      return;
    case 'CLOSE':
      release('hold-cursor', words[1] === 'ALL' ? null : identifier(tokens[1]));
      return;
    case 'DEALLOCATE': {
      const at = words[1] === 'PREPARE' ? 2 : 1;
      release('sql-prepared', words[at] === 'ALL' ? null : identifier(tokens[at]));
      return;
    }
    case 'PREPARE':
      acquire('sql-prepared', identifier(tokens[1]));
      break;
    case 'DECLARE': {
      const forAt = words.indexOf('FOR');
      const head = forAt === -1 ? words : words.slice(0, forAt);
      if (head.some((w, i) => w === 'WITH' && head[i + 1] === 'HOLD'))
        acquire('hold-cursor', identifier(tokens[1]));
      break;
    }
    case 'DO':
      for (const token of tokens) {
        if (token.kind !== 'string' && token.kind !== 'dollar-string') continue;
        for (const [kind, pattern] of DO_BODY_PATTERNS) if (pattern.test(token.text)) acquire(kind);
      }
      return;
  }
  // Anywhere in a statement (EXPLAIN ANALYZE, CTEs, PREPARE ... AS, several per statement).
  for (let i = 0; i < tokens.length; i++) {
    const word = words[i];
    const name = functionName(tokens[i]);
    if (name !== null && tokens[i + 1]?.text === '(') {
      if (SESSION_LOCKS.has(name)) acquire('advisory');
      else if (name === 'pg_advisory_unlock_all') release('advisory', null);
    }
    if (name !== null && (name === 'pg_temp' || name.startsWith('pg_temp_'))) acquire('temp');
    if (word === 'CREATE' && createsTemp(words, i + 1)) acquire('temp');
    if (word === 'INTO' && (words[i + 1] === 'TEMP' || words[i + 1] === 'TEMPORARY')) acquire('temp');
  }
}

/** `CREATE [OR REPLACE] [GLOBAL|LOCAL] {TEMP|TEMPORARY} ...` from the word after CREATE. */
function createsTemp(words: ReadonlyArray<string | null>, from: number): boolean {
  for (let i = from; i < words.length && i < from + 4; i++) {
    const w = words[i];
    if (w === 'TEMP' || w === 'TEMPORARY') return true;
    if (w !== 'OR' && w !== 'REPLACE' && w !== 'GLOBAL' && w !== 'LOCAL') return false;
  }
  return false;
}

/** A word or quoted identifier as a lower-case name, for function and schema names. */
function functionName(token: Token | undefined): string | null {
  if (token === undefined) return null;
  if (token.kind === 'word') return token.text.toLowerCase();
  if (token.kind === 'quoted-ident') return unquote(token.text).toLowerCase();
  return null;
}

/**
 * An object name as PostgreSQL stores it: unquoted words fold to lower case,
 * quoted identifiers keep theirs. '' when the token is not a name (the pin then
 * stays until a release of every object of its kind).
 */
function identifier(token: Token | undefined): string {
  if (token === undefined) return '';
  if (token.kind === 'word') return token.text.replace(/[A-Z]/g, (c) => c.toLowerCase());
  if (token.kind === 'quoted-ident' && token.unterminated !== true) return unquote(token.text);
  return '';
}

function unquote(text: string): string {
  return text.slice(1, -1).replace(/""/g, '"');
}

/**
 * What one client session holds. Effects of statements sent inside a transaction
 * are pending until it ends: on commit they apply in order; otherwise acquisitions
 * stay (conservative: a session advisory lock even survives ROLLBACK) and releases
 * are dropped.
 */
export class SessionPins {
  private readonly committed = new Map<PinKind, Set<string>>();
  private pending: PinEffect[] = [];

  /** The client sent statements with these effects. */
  note(effects: readonly PinEffect[]): void {
    for (const effect of effects) this.pending.push(effect);
  }

  /** The session reached a transaction boundary (ReadyForQuery 'I'); `committed` when nothing failed or rolled back. */
  settle(committed: boolean): void {
    for (const effect of this.pending) {
      if (effect.op === 'acquire') this.add(effect.kind, effect.name ?? '');
      else if (committed) this.remove(effect.kind, effect.name);
    }
    this.pending = [];
  }

  /** Kinds of state held now, counting acquisitions not yet settled. */
  held(): PinKind[] {
    const kinds = new Set<PinKind>();
    for (const [kind, names] of this.committed) if (names.size > 0) kinds.add(kind);
    for (const effect of this.pending) if (effect.op === 'acquire') kinds.add(effect.kind);
    return KIND_ORDER.filter((kind) => kinds.has(kind));
  }

  private add(kind: PinKind, name: string): void {
    let names = this.committed.get(kind);
    if (names === undefined) {
      names = new Set();
      this.committed.set(kind, names);
    }
    names.add(name);
  }

  private remove(kind: PinKind, name: string | null): void {
    const names = this.committed.get(kind);
    if (names === undefined) return;
    if (name === null) names.clear();
    else if (name !== '') names.delete(name);
  }
}

/** "temporary tables, LISTEN registrations" */
export function describePins(kinds: readonly PinKind[]): string {
  return kinds.map((kind) => DESCRIPTIONS[kind]).join(', ');
}

/** The FATAL 57P01 a pinned session gets when its backend is gone: what pinned it and what to do. */
export function pinnedSessionLost(kinds: readonly PinKind[]): { message: string; detail: string } {
  if (kinds.length === 0) throw new Error('pinnedSessionLost needs at least one pin');
  return {
    message:
      `terminating connection: the session held ${describePins(kinds)}, which cannot move to ` +
      'the new PostgreSQL connection after a failover or server restart; reconnect and re-create them',
    detail:
      'This state lived only in the lost backend process. The proxy re-applies SET parameters and ' +
      'prepared statements on a new primary, but not this.',
  };
}
