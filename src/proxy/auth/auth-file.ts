// PgBouncer-style auth file: one `"user" "secret"` per line, where secret is a SCRAM-SHA-256
// verifier (`SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>`) or a plain-text password.
// A `"` inside a quoted field is written `""`. Blank lines and lines starting with ';' or '#'
// are comments.
// @see https://www.pgbouncer.org/config.html#authentication-file-format
import { readFileSync } from 'node:fs';
import { parseScramSecret, type ScramSecret, scramSecretFromPassword } from './scram.ts';

export type UserSecret = { kind: 'scram'; secret: ScramSecret } | { kind: 'plain'; password: string };

/** A bad auth file: the message names the file and line, and says how to fix it. */
export class AuthFileError extends Error {
  override readonly name = 'AuthFileError';
}

/** Reads one quoted field starting at `at`; returns its value and the index after it, or null. */
function quoted(line: string, at: number): { value: string; next: number } | null {
  if (line[at] !== '"') return null;
  let value = '';
  let i = at + 1;
  for (;;) {
    const quote = line.indexOf('"', i);
    if (quote < 0) return null;
    value += line.slice(i, quote);
    if (line[quote + 1] === '"') {
      value += '"';
      i = quote + 2;
      continue;
    }
    return { value, next: quote + 1 };
  }
}

export function parseAuthFile(text: string, fileName: string): Map<string, UserSecret> {
  const users = new Map<string, UserSecret>();
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, index) => {
    const where = `${fileName}:${index + 1}`;
    const line = raw.trim();
    if (line === '' || line.startsWith(';') || line.startsWith('#')) return;
    const user = quoted(line, 0);
    const gap = user === null ? -1 : line.slice(user.next).search(/\S/);
    const secret = user === null || gap <= 0 ? null : quoted(line, user.next + gap);
    if (user === null || secret === null || line.slice(secret.next).trim() !== '') {
      throw new AuthFileError(`${where}: expected "user" "password-or-SCRAM-secret", got: ${raw}`);
    }
    if (user.value === '') throw new AuthFileError(`${where}: the user name is empty`);
    if (users.has(user.value)) throw new AuthFileError(`${where}: user "${user.value}" is listed twice`);
    users.set(user.value, parseSecret(secret.value, where));
  });
  return users;
}

function parseSecret(text: string, where: string): UserSecret {
  if (text.startsWith('SCRAM-SHA-256$')) {
    const secret = parseScramSecret(text);
    if (secret === null) {
      throw new AuthFileError(
        `${where}: malformed SCRAM-SHA-256 secret (expected SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>, as in pg_authid)`,
      );
    }
    return { kind: 'scram', secret };
  }
  if (/^md5[0-9a-f]{32}$/.test(text)) {
    throw new AuthFileError(
      `${where}: an md5 hash cannot verify SCRAM-SHA-256 logins; store the SCRAM secret from pg_authid or a plain password`,
    );
  }
  return { kind: 'plain', password: text };
}

/** Reads and parses the file; errors name the file (and line). */
export function loadAuthFile(path: string): Map<string, UserSecret> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new AuthFileError(`cannot read auth file ${path}: ${(error as Error).message}`);
  }
  return parseAuthFile(text, path);
}

/**
 * The SCRAM secret to verify a login against. Plain passwords get one derived with `salt`
 * (random per load, from the caller), so every user costs the same to check.
 */
export function scramSecretOf(entry: UserSecret, salt: Buffer): ScramSecret {
  return entry.kind === 'scram' ? entry.secret : scramSecretFromPassword(entry.password, salt);
}
