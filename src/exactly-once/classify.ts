// What a statement means for exactly-once handling, decided from its text alone.
// The read-only class is an allowlist: anything the lexer cannot prove harmless is
// treated as a write and gets the commit fence, because a write mistaken for a
// read would lose its outcome in a failover, while a read mistaken for a write
// costs one round trip.
import { keyword, statements, type Token, tokenize } from './lexer.ts';

export type TransactionVerb =
  | 'begin'
  | 'commit'
  | 'rollback'
  | 'savepoint'
  | 'release'
  | 'rollback-to'
  | 'prepare-transaction'
  | 'commit-prepared'
  | 'rollback-prepared';

export type StatementClass =
  | { kind: 'empty' }
  /** Plain SELECT/SHOW/VALUES/TABLE with only known-pure functions and no row locks: no fence. */
  | { kind: 'read' }
  /** May write: wrapped (autocommit) or fenced at COMMIT (explicit transaction). */
  | { kind: 'write' }
  /** SET, RESET, LISTEN, DISCARD, ...: session state, no transaction outcome to protect. */
  | { kind: 'session' }
  | { kind: 'transaction'; verb: TransactionVerb }
  /** Cannot run inside a transaction block or has no single outcome: forwarded as is, never wrapped. */
  | { kind: 'unwrappable'; reason: string }
  /** Several statements in one Query: the server runs them in one implicit transaction. */
  | { kind: 'multi'; count: number };

/** Functions that read but never write and have no side effects outside the transaction. */
const PURE_FUNCTIONS = new Set([
  'ABS',
  'ARRAY_AGG',
  'ARRAY_LENGTH',
  'AVG',
  'BOOL_AND',
  'BOOL_OR',
  'CARDINALITY',
  'CAST',
  'CEIL',
  'CHAR_LENGTH',
  'COALESCE',
  'CONCAT',
  'COUNT',
  'CURRENT_SETTING',
  'DATE_TRUNC',
  'EXISTS',
  'EXTRACT',
  'FLOOR',
  'FORMAT',
  'GREATEST',
  'JSON_AGG',
  'JSONB_AGG',
  'JSONB_BUILD_OBJECT',
  'JSON_BUILD_OBJECT',
  'LEAST',
  'LEFT',
  'LENGTH',
  'LOWER',
  'MAX',
  'MD5',
  'MIN',
  'NOW',
  'NULLIF',
  'PG_BACKEND_PID',
  'PG_CURRENT_WAL_LSN',
  'PG_IS_IN_RECOVERY',
  'PG_SLEEP',
  'ROUND',
  'ROW_NUMBER',
  'RIGHT',
  'STRING_AGG',
  'SUBSTRING',
  'SUM',
  'TO_CHAR',
  'TRIM',
  'UPPER',
  'VERSION',
]);

/** Words that, anywhere in a statement, make it something other than a plain read. */
const WRITE_WORDS = new Set(['INSERT', 'UPDATE', 'DELETE', 'MERGE', 'INTO', 'FOR', 'CALL', 'COPY', 'LOCK']);

const SESSION_VERBS = new Set([
  'SET',
  'RESET',
  'LISTEN',
  'UNLISTEN',
  'NOTIFY',
  'DEALLOCATE',
  'PREPARE',
  'LOAD',
]);

export function classify(sql: string): StatementClass {
  const parts = statements(tokenize(sql));
  if (parts.length === 0) return { kind: 'empty' };
  if (parts.length > 1) return { kind: 'multi', count: parts.length };
  return classifyStatement(parts[0]!);
}

export function classifyStatement(tokens: readonly Token[]): StatementClass {
  const words = tokens.map(keyword);
  const [first, second] = words;
  const has = (word: string): boolean => words.includes(word);
  const transaction = transactionVerb(words);
  if (transaction !== null) return { kind: 'transaction', verb: transaction };
  if (first === 'SET' && second === 'TRANSACTION') return { kind: 'session' };
  if (first === 'PREPARE' && second !== 'TRANSACTION') return { kind: 'session' };
  if (first === 'DISCARD') {
    return { kind: 'unwrappable', reason: 'DISCARD cannot run inside a transaction block' };
  }
  if (first != null && SESSION_VERBS.has(first)) return { kind: 'session' };
  if (has('CONCURRENTLY'))
    return { kind: 'unwrappable', reason: 'CONCURRENTLY cannot run inside a transaction block' };
  if (first === 'VACUUM')
    return { kind: 'unwrappable', reason: 'VACUUM cannot run inside a transaction block' };
  if (first === 'ALTER' && second === 'SYSTEM') {
    return { kind: 'unwrappable', reason: 'ALTER SYSTEM cannot run inside a transaction block' };
  }
  if ((first === 'CREATE' || first === 'DROP') && (second === 'DATABASE' || second === 'TABLESPACE')) {
    return { kind: 'unwrappable', reason: `${first} ${second} cannot run inside a transaction block` };
  }
  if (first === 'REINDEX' && (second === 'DATABASE' || second === 'SYSTEM')) {
    return { kind: 'unwrappable', reason: `REINDEX ${second} cannot run inside a transaction block` };
  }
  if (first === 'CLUSTER' && tokens.length === 1) {
    return { kind: 'unwrappable', reason: 'CLUSTER without a table cannot run inside a transaction block' };
  }
  if ((first === 'CREATE' || first === 'ALTER' || first === 'DROP') && second === 'SUBSCRIPTION') {
    return {
      kind: 'unwrappable',
      reason: `${first} SUBSCRIPTION manages a replication slot outside transactions`,
    };
  }
  if (first === 'COPY')
    return { kind: 'unwrappable', reason: 'COPY streams data outside the wrapped statement' };
  if (first === 'SHOW') return { kind: 'read' };
  if (first === 'SELECT' || first === 'VALUES' || first === 'TABLE' || first === 'WITH' || first === '(') {
    return isPlainRead(tokens, words) ? { kind: 'read' } : { kind: 'write' };
  }
  return { kind: 'write' };
}

function transactionVerb(words: ReadonlyArray<string | null>): TransactionVerb | null {
  const [first, second] = words;
  switch (first) {
    case 'BEGIN':
    case 'START':
      return 'begin';
    case 'COMMIT':
    case 'END':
      return second === 'PREPARED' ? 'commit-prepared' : 'commit';
    case 'ROLLBACK':
    case 'ABORT':
      if (second === 'PREPARED') return 'rollback-prepared';
      return words.includes('TO') ? 'rollback-to' : 'rollback';
    case 'SAVEPOINT':
      return 'savepoint';
    case 'RELEASE':
      return 'release';
    case 'PREPARE':
      return second === 'TRANSACTION' ? 'prepare-transaction' : null;
    default:
      return null;
  }
}

function isPlainRead(tokens: readonly Token[], words: ReadonlyArray<string | null>): boolean {
  for (let i = 0; i < tokens.length; i++) {
    const word = words[i];
    if (word === null || word === undefined) continue;
    if (WRITE_WORDS.has(word)) return false;
    const next = tokens[i + 1];
    const previous = tokens[i - 1];
    // A function call: `name(`. Qualified names (`schema.fn(`) are never on the list.
    if (
      next?.text === '(' &&
      previous?.text !== '.' &&
      !PURE_FUNCTIONS.has(word) &&
      !isSyntaxBeforeParen(word)
    ) {
      return false;
    }
    if (next?.text === '(' && previous?.text === '.') return false;
  }
  return true;
}

/** Keywords that are followed by a parenthesis without being function calls. */
function isSyntaxBeforeParen(word: string): boolean {
  return [
    'SELECT',
    'FROM',
    'WHERE',
    'IN',
    'AS',
    'AND',
    'OR',
    'NOT',
    'ON',
    'JOIN',
    'VALUES',
    'UNION',
    'ALL',
    'ANY',
    'SOME',
    'EXCEPT',
    'INTERSECT',
    'WITH',
    'OVER',
    'FILTER',
    'BY',
    'HAVING',
    'LATERAL',
    'ROW',
    'ARRAY',
    'USING',
    'WHEN',
    'THEN',
    'ELSE',
    'CASE',
    'IS',
    'DISTINCT',
    'WITHIN',
    'LIKE',
    'BETWEEN',
    'RECURSIVE',
    'MATERIALIZED',
  ].includes(word);
}
