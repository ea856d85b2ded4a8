// A small SQL lexer: just enough of PostgreSQL's lexical rules to find
// statement boundaries, comments and keywords without being fooled by string
// literals, quoted identifiers or dollar quotes. It never throws: unterminated
// constructs run to the end of the text and are flagged, so the server (not the
// proxy) reports the syntax error.

export type TokenKind =
  | 'space'
  | 'line-comment'
  | 'block-comment'
  | 'string'
  | 'quoted-ident'
  | 'dollar-string'
  | 'param'
  | 'word'
  | 'number'
  | 'semicolon'
  | 'punct';

export interface Token {
  kind: TokenKind;
  /** The exact source text of the token. */
  text: string;
  start: number;
  end: number;
  /** A string, identifier, comment or dollar quote that the text ended inside. */
  unterminated?: true;
}

const WORD_START = /[A-Za-z_\u0080-\uffff]/;
const WORD_PART = /[A-Za-z0-9_$\u0080-\uffff]/;
const DOLLAR_TAG = /^\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/;

export function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const push = (kind: TokenKind, end: number, unterminated = false): void => {
    const token: Token = { kind, text: sql.slice(i, end), start: i, end };
    if (unterminated) token.unterminated = true;
    tokens.push(token);
    i = end;
  };
  while (i < sql.length) {
    const c = sql[i]!;
    const next = sql[i + 1];
    if (/\s/.test(c)) {
      let j = i + 1;
      while (j < sql.length && /\s/.test(sql[j]!)) j++;
      push('space', j);
    } else if (c === '-' && next === '-') {
      const nl = sql.indexOf('\n', i);
      push('line-comment', nl === -1 ? sql.length : nl);
    } else if (c === '/' && next === '*') {
      const end = blockCommentEnd(sql, i);
      push('block-comment', end === -1 ? sql.length : end, end === -1);
    } else if (c === "'") {
      const end = quotedEnd(sql, i + 1, "'", false);
      push('string', end === -1 ? sql.length : end, end === -1);
    } else if ((c === 'E' || c === 'e') && next === "'") {
      const end = quotedEnd(sql, i + 2, "'", true);
      push('string', end === -1 ? sql.length : end, end === -1);
    } else if (c === '"') {
      const end = quotedEnd(sql, i + 1, '"', false);
      push('quoted-ident', end === -1 ? sql.length : end, end === -1);
    } else if (c === '$') {
      const tag = DOLLAR_TAG.exec(sql.slice(i, i + 64));
      if (tag !== null) {
        const close = sql.indexOf(tag[0], i + tag[0].length);
        push('dollar-string', close === -1 ? sql.length : close + tag[0].length, close === -1);
      } else if (next !== undefined && /[0-9]/.test(next)) {
        let j = i + 1;
        while (j < sql.length && /[0-9]/.test(sql[j]!)) j++;
        push('param', j);
      } else {
        push('punct', i + 1);
      }
    } else if (WORD_START.test(c)) {
      let j = i + 1;
      while (j < sql.length && WORD_PART.test(sql[j]!)) j++;
      push('word', j);
    } else if (/[0-9]/.test(c) || (c === '.' && next !== undefined && /[0-9]/.test(next))) {
      let j = i + 1;
      while (j < sql.length && /[0-9A-Za-z_.]/.test(sql[j]!)) j++;
      push('number', j);
    } else if (c === ';') {
      push('semicolon', i + 1);
    } else {
      push('punct', i + 1);
    }
  }
  return tokens;
}

/** PostgreSQL block comments nest. Returns the index after the closing `*\/`, or -1. */
function blockCommentEnd(sql: string, start: number): number {
  let depth = 0;
  let i = start;
  while (i < sql.length) {
    if (sql[i] === '/' && sql[i + 1] === '*') {
      depth++;
      i += 2;
    } else if (sql[i] === '*' && sql[i + 1] === '/') {
      depth--;
      i += 2;
      if (depth === 0) return i;
    } else {
      i++;
    }
  }
  return -1;
}

/** Index after the closing quote (doubled quotes escape it; backslashes too in E'' strings), or -1. */
function quotedEnd(sql: string, from: number, quote: string, backslashEscapes: boolean): number {
  let i = from;
  while (i < sql.length) {
    const c = sql[i];
    if (backslashEscapes && c === '\\') {
      i += 2;
    } else if (c === quote) {
      if (sql[i + 1] === quote) i += 2;
      else return i + 1;
    } else {
      i++;
    }
  }
  return -1;
}

/** Tokens that carry meaning: no whitespace, no comments. */
export function significant(tokens: readonly Token[]): Token[] {
  return tokens.filter((t) => t.kind !== 'space' && t.kind !== 'line-comment' && t.kind !== 'block-comment');
}

/** Splits significant tokens into statements at top-level semicolons; empty statements are dropped. */
export function statements(tokens: readonly Token[]): Token[][] {
  const result: Token[][] = [];
  let current: Token[] = [];
  for (const token of significant(tokens)) {
    if (token.kind === 'semicolon') {
      if (current.length > 0) result.push(current);
      current = [];
    } else {
      current.push(token);
    }
  }
  if (current.length > 0) result.push(current);
  return result;
}

/** The upper-cased text of a word token (keywords and unquoted identifiers fold case), else null. */
export function keyword(token: Token | undefined): string | null {
  return token !== undefined && token.kind === 'word' ? token.text.toUpperCase() : null;
}
