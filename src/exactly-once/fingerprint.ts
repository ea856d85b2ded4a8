// The request fingerprint stored with a key: a retry under the same key must be
// the same request, or the client has a bug (two requests sharing one key) that
// must surface instead of silently returning the other request's outcome.
//
// Normalization drops what legitimately changes between retries of one request:
// whitespace, all comments (the key comment, and sqlcommenter tags such as a
// fresh traceparent per attempt), trailing semicolons and the case of keywords
// and unquoted identifiers (PostgreSQL folds those anyway). Literals, quoted
// identifiers and parameter values are kept exactly.
import { createHash } from 'node:crypto';
import { significant, tokenize } from './lexer.ts';

export interface RequestText {
  sql: string;
  /** Bound parameter values as sent (text or binary), null for SQL NULL. */
  params?: ReadonlyArray<Uint8Array | null>;
  /** Bind's parameter format codes (0 text, 1 binary); the same bytes in another format are another request. */
  paramFormats?: readonly number[];
}

export function normalizeStatement(sql: string): string {
  const tokens = significant(tokenize(sql));
  while (tokens.at(-1)?.kind === 'semicolon') tokens.pop();
  return tokens.map((t) => (t.kind === 'word' ? t.text.toLowerCase() : t.text)).join(' ');
}

/** A hex SHA-256 of the normalized statement and the parameters, unambiguously framed. */
export function fingerprint(request: RequestText): string {
  const hash = createHash('sha256');
  const statement = Buffer.from(normalizeStatement(request.sql), 'utf8');
  hash.update(frame(statement));
  const params = request.params ?? [];
  hash.update(frame(Buffer.from(String(params.length))));
  params.forEach((value, index) => {
    const format = request.paramFormats?.[request.paramFormats.length === 1 ? 0 : index] ?? 0;
    hash.update(frame(Buffer.from(String(format))));
    hash.update(value === null ? Buffer.from('N') : Buffer.concat([Buffer.from('V'), frame(value)]));
  });
  return hash.digest('hex');
}

function frame(bytes: Uint8Array): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}
