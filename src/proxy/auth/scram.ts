// SCRAM-SHA-256 primitives shared by the server side (clients logging in to the proxy) and the
// client side (the proxy logging in to PostgreSQL). Deterministic: nonces and salts come in.
// @see https://datatracker.ietf.org/doc/html/rfc5802#section-3 and RFC 7677
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

export const SCRAM_SHA_256 = 'SCRAM-SHA-256';
/** PostgreSQL's default scram_iterations. */
export const DEFAULT_SCRAM_ITERATIONS = 4096;
/** Upper bound on iterations we will compute for a peer: a hostile count must not stall the event loop. */
export const MAX_SCRAM_ITERATIONS = 1_000_000;
const KEY_BYTES = 32;
const NONCE_BYTES = 18;

/** What a server stores instead of the password (pg_authid.rolpassword's SCRAM form). */
export interface ScramSecret {
  iterations: number;
  salt: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

export function hmac(key: Buffer, data: string | Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

export function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

export function xor(a: Buffer, b: Buffer): Buffer {
  if (a.length !== b.length) throw new Error(`xor of ${a.length} and ${b.length} bytes`);
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

/** Constant-time comparison that is also safe on different lengths. */
export function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

// RFC 4013 SASLprep, the parts that change real passwords: "commonly mapped to nothing"
// characters vanish, non-ASCII spaces become a space (in that order, as PostgreSQL's
// saslprep.c does), then NFKC. PostgreSQL falls back to the raw
// password when SASLprep fails, so skipping the prohibited-output check keeps us compatible for
// every password that SASLprep accepts.
const NON_ASCII_SPACE = /[\u00a0\u1680\u2000-\u200b\u202f\u205f\u3000]/g;
const MAPPED_TO_NOTHING =
  /\u00ad|\u034f|\u1806|[\u180b-\u180d]|[\u200b-\u200d]|\u2060|[\ufe00-\ufe0f]|\ufeff/g;

export function saslprep(password: string): string {
  if (/^[\x00-\x7f]*$/.test(password)) return password;
  return password.replace(MAPPED_TO_NOTHING, '').replace(NON_ASCII_SPACE, ' ').normalize('NFKC');
}

export function saltedPassword(password: string, salt: Buffer, iterations: number): Buffer {
  return pbkdf2Sync(saslprep(password), salt, iterations, KEY_BYTES, 'sha256');
}

/** The secret PostgreSQL would store for `password` with this salt and iteration count. */
export function scramSecretFromPassword(
  password: string,
  salt: Buffer,
  iterations = DEFAULT_SCRAM_ITERATIONS,
): ScramSecret {
  const salted = saltedPassword(password, salt, iterations);
  return {
    iterations,
    salt,
    storedKey: sha256(hmac(salted, 'Client Key')),
    serverKey: hmac(salted, 'Server Key'),
  };
}

/** `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, as in pg_authid and PgBouncer userlists. */
export function formatScramSecret(secret: ScramSecret): string {
  const b64 = (b: Buffer) => b.toString('base64');
  return `${SCRAM_SHA_256}$${secret.iterations}:${b64(secret.salt)}$${b64(secret.storedKey)}:${b64(secret.serverKey)}`;
}

const SECRET_PATTERN = /^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/;

/** Parses the stored form; null if `text` is not one. */
export function parseScramSecret(text: string): ScramSecret | null {
  const match = SECRET_PATTERN.exec(text);
  if (match === null) return null;
  const iterations = Number(match[1]);
  const secret = {
    iterations,
    salt: Buffer.from(match[2]!, 'base64'),
    storedKey: Buffer.from(match[3]!, 'base64'),
    serverKey: Buffer.from(match[4]!, 'base64'),
  };
  if (
    !(iterations >= 1 && iterations <= MAX_SCRAM_ITERATIONS) ||
    secret.salt.length === 0 ||
    secret.storedKey.length !== KEY_BYTES ||
    secret.serverKey.length !== KEY_BYTES
  ) {
    return null;
  }
  return secret;
}

/** A fresh printable nonce (base64 has no ','); only shells call this, cores take nonces as input. */
export function newScramNonce(): string {
  return randomBytes(NONCE_BYTES).toString('base64');
}

/** Splits `a=x,b=y` into ordered attribute pairs; null when a part is not `letter=value`. */
export function parseAttributes(message: string): Array<[string, string]> | null {
  const pairs: Array<[string, string]> = [];
  for (const part of message.split(',')) {
    if (part.length < 2 || part[1] !== '=' || !/^[A-Za-z]$/.test(part[0]!)) return null;
    pairs.push([part[0]!, part.slice(2)]);
  }
  return pairs;
}

/** Printable ASCII except ',' (RFC 5802 `printable`). */
export function isValidNonce(nonce: string): boolean {
  return /^[\x21-\x2b\x2d-\x7e]+$/.test(nonce);
}
