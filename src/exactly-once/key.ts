// Finding the idempotency key a client attached to a request. Two forms:
//  - an sqlcommenter-style comment, leading or trailing, on an autocommit
//    statement: `INSERT ... /*pgward_key='order-42'*/` (values URL-encoded, `'`
//    escaped as `\'`, per the sqlcommenter specification);
//  - `SELECT set_config('pgward.idempotency_key', $1 | 'literal', true)` as a
//    statement inside an explicit transaction.
import { keyword, significant, type Token, tokenize } from './lexer.ts';

export const KEY_COMMENT_NAME = 'pgward_key';
export const KEY_SETTING_NAME = 'pgward.idempotency_key';
/** Like Stripe's limit: long enough for any UUID or composite id, short enough to index cheaply. */
export const MAX_KEY_LENGTH = 255;

export type KeyCheck = { ok: true; key: string } | { ok: false; reason: string };

/** A key must be non-empty printable text of bounded length. */
export function checkKey(key: string): KeyCheck {
  if (key.length === 0) return { ok: false, reason: 'the idempotency key is empty' };
  if (key.length > MAX_KEY_LENGTH) {
    return {
      ok: false,
      reason: `the idempotency key is ${key.length} characters; the limit is ${MAX_KEY_LENGTH}`,
    };
  }
  if (/[\u0000-\u001f\u007f]/.test(key)) {
    return { ok: false, reason: 'the idempotency key contains control characters' };
  }
  return { ok: true, key };
}

export type CommentKey =
  /** No key comment: the statement is not keyed. */
  | { kind: 'none' }
  | { kind: 'key'; key: string; where: 'leading' | 'trailing' }
  /** A key comment is present but unusable: the client gets an error, never a silent unkeyed run. */
  | { kind: 'invalid'; reason: string };

/**
 * Looks for a `pgward_key` in the first or last comment of the text. Only block
 * comments in those positions count, so a key-like string inside a literal or in
 * the middle of the statement is never taken for a key.
 */
export function extractCommentKey(sql: string): CommentKey {
  const tokens = tokenize(sql);
  const candidates: Array<{ token: Token; where: 'leading' | 'trailing' }> = [];
  const first = tokens.find((t) => t.kind !== 'space');
  if (first?.kind === 'block-comment') candidates.push({ token: first, where: 'leading' });
  const last = [...tokens].reverse().find((t) => t.kind !== 'space' && t.kind !== 'semicolon');
  if (last?.kind === 'block-comment' && last !== first) candidates.push({ token: last, where: 'trailing' });
  let found: CommentKey = { kind: 'none' };
  for (const { token, where } of candidates) {
    if (token.unterminated) continue;
    const pairs = parseSqlcommenter(token.text.slice(2, -2));
    if (pairs === null) continue;
    const raw = pairs.get(KEY_COMMENT_NAME);
    if (raw === undefined) continue;
    if (found.kind !== 'none') return { kind: 'invalid', reason: 'two pgward_key comments on one statement' };
    const key = decodeValue(raw);
    if (key === null) {
      found = { kind: 'invalid', reason: 'the pgward_key value is not valid URL encoding' };
      continue;
    }
    const check = checkKey(key);
    found = check.ok ? { kind: 'key', key: check.key, where } : { kind: 'invalid', reason: check.reason };
  }
  return found;
}

/**
 * Parses `k1='v1',k2='v2'` (sqlcommenter). Returns null when the comment is not
 * in that shape: an ordinary comment is not an error, it simply carries no key.
 */
export function parseSqlcommenter(body: string): Map<string, string> | null {
  const pairs = new Map<string, string>();
  let i = 0;
  const skipSpace = (): void => {
    while (i < body.length && /\s/.test(body[i]!)) i++;
  };
  skipSpace();
  if (i === body.length) return null;
  while (i < body.length) {
    const eq = body.indexOf('=', i);
    if (eq === -1) return null;
    const name = body.slice(i, eq).trim();
    if (!/^[A-Za-z0-9_.%-]+$/.test(name)) return null;
    i = eq + 1;
    if (body[i] !== "'") return null;
    i++;
    let value = '';
    for (;;) {
      if (i >= body.length) return null;
      const c = body[i]!;
      if (c === '\\' && body[i + 1] === "'") {
        value += "'";
        i += 2;
      } else if (c === "'") {
        i++;
        break;
      } else {
        value += c;
        i++;
      }
    }
    pairs.set(name, value);
    skipSpace();
    if (i === body.length) break;
    if (body[i] !== ',') return null;
    i++;
    skipSpace();
  }
  return pairs;
}

function decodeValue(raw: string): string | null {
  try {
    return decodeURIComponent(raw);
  } catch {
    return null;
  }
}

/** Removes the key comment (and only it) from the text; other comments and the statement stay as written. */
export function stripKeyComment(sql: string): string {
  const tokens = tokenize(sql);
  const firstIndex = tokens.findIndex((t) => t.kind !== 'space');
  const lastIndex = findLastIndex(tokens, (t) => t.kind !== 'space' && t.kind !== 'semicolon');
  const drop = new Set<number>();
  for (const index of [firstIndex, lastIndex]) {
    const token = tokens[index];
    if (token?.kind !== 'block-comment' || token.unterminated) continue;
    if (parseSqlcommenter(token.text.slice(2, -2))?.has(KEY_COMMENT_NAME)) drop.add(index);
  }
  return tokens
    .filter((_, index) => !drop.has(index))
    .map((t) => t.text)
    .join('')
    .trim();
}

function findLastIndex<T>(items: readonly T[], predicate: (item: T) => boolean): number {
  for (let i = items.length - 1; i >= 0; i--) if (predicate(items[i]!)) return i;
  return -1;
}

export type SetConfigKey =
  | { kind: 'none' }
  /** The key is the value bound to parameter `$index` (1-based). */
  | { kind: 'param'; index: number }
  | { kind: 'literal'; key: string }
  | { kind: 'invalid'; reason: string };

/**
 * Recognizes exactly `SELECT set_config('pgward.idempotency_key', <$n | 'literal'>, true)`
 * (any case and spacing, optional trailing `;`). `is_local = true` is required:
 * a session-wide key would silently apply to later transactions.
 */
export function recognizeSetConfigKey(sql: string): SetConfigKey {
  const tokens = significant(tokenize(sql));
  while (tokens.at(-1)?.kind === 'semicolon') tokens.pop();
  const shape = ['SELECT', 'SET_CONFIG', '(', 'name', ',', 'value', ',', 'TRUE', ')'];
  if (tokens.length !== shape.length) return { kind: 'none' };
  if (keyword(tokens[0]) !== 'SELECT' || !isSetConfig(tokens[1])) return { kind: 'none' };
  if (
    tokens[2]?.text !== '(' ||
    tokens[4]?.text !== ',' ||
    tokens[6]?.text !== ',' ||
    tokens[8]?.text !== ')'
  ) {
    return { kind: 'none' };
  }
  const name = tokens[3]!;
  if (name.kind !== 'string' || stringValue(name) !== KEY_SETTING_NAME) return { kind: 'none' };
  const local = keyword(tokens[7]);
  if (local !== 'TRUE') {
    return {
      kind: 'invalid',
      reason: `${KEY_SETTING_NAME} must be set with is_local = true, inside a transaction`,
    };
  }
  const value = tokens[5]!;
  if (value.kind === 'param') return { kind: 'param', index: Number(value.text.slice(1)) };
  if (value.kind === 'string') {
    const literal = stringValue(value);
    if (literal === null) return { kind: 'invalid', reason: 'the idempotency key literal is malformed' };
    const check = checkKey(literal);
    return check.ok ? { kind: 'literal', key: check.key } : { kind: 'invalid', reason: check.reason };
  }
  return { kind: 'none' };
}

function isSetConfig(token: Token | undefined): boolean {
  if (token === undefined) return false;
  if (token.kind === 'word') return token.text.toLowerCase() === 'set_config';
  return token.kind === 'quoted-ident' && token.text === '"set_config"';
}

/** The value of a plain '...' literal (doubled quotes unescaped); null for E'' strings or unterminated ones. */
function stringValue(token: Token): string | null {
  if (token.unterminated || !token.text.startsWith("'")) return null;
  return token.text.slice(1, -1).replaceAll("''", "'");
}
