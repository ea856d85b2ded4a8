// The proxy's side of password authentication when it logs in to PostgreSQL with its
// own credentials (MD5 and SCRAM-SHA-256 client, RFC 5802/7677).
// @see https://www.postgresql.org/docs/15/sasl-authentication.html
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { buildSASLInitialResponse, buildSASLResponse } from '../wire/frontend.ts';

const SCRAM_MECHANISM = 'SCRAM-SHA-256';

export function md5PasswordResponse(user: string, password: string, salt: Uint8Array): string {
  const inner = createHash('md5')
    .update(password + user)
    .digest('hex');
  return 'md5' + createHash('md5').update(inner).update(salt).digest('hex');
}

function hmac(key: Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

function parseAttributes(message: string): Map<string, string> {
  const attributes = new Map<string, string>();
  for (const part of message.split(',')) attributes.set(part.slice(0, 1), part.slice(2));
  return attributes;
}

/** One SCRAM-SHA-256 exchange, without channel binding. */
export class ScramClient {
  private readonly clientNonce = randomBytes(18).toString('base64');
  private clientFirstBare = '';
  private expectedServerSignature: Buffer | null = null;

  constructor(private readonly password: string) {}

  initialResponse(mechanisms: readonly string[]): Buffer {
    if (!mechanisms.includes(SCRAM_MECHANISM)) {
      throw new Error(`PostgreSQL offers SASL mechanisms ${mechanisms.join(', ')}, not ${SCRAM_MECHANISM}`);
    }
    this.clientFirstBare = `n=*,r=${this.clientNonce}`;
    return buildSASLInitialResponse(SCRAM_MECHANISM, Buffer.from(`n,,${this.clientFirstBare}`));
  }

  continueResponse(data: Buffer): Buffer {
    const serverFirst = data.toString('utf8');
    const attributes = parseAttributes(serverFirst);
    const nonce = attributes.get('r') ?? '';
    const salt = Buffer.from(attributes.get('s') ?? '', 'base64');
    const iterations = Number(attributes.get('i'));
    if (!nonce.startsWith(this.clientNonce) || salt.length === 0 || !(iterations > 0)) {
      throw new Error('PostgreSQL sent an invalid SCRAM server-first-message');
    }
    const saltedPassword = pbkdf2Sync(this.password, salt, iterations, 32, 'sha256');
    const clientKey = hmac(saltedPassword, 'Client Key');
    const storedKey = createHash('sha256').update(clientKey).digest();
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const signature = hmac(storedKey, authMessage);
    const proof = Buffer.alloc(clientKey.length);
    for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i]! ^ signature[i]!;
    this.expectedServerSignature = hmac(hmac(saltedPassword, 'Server Key'), authMessage);
    return buildSASLResponse(Buffer.from(`${withoutProof},p=${proof.toString('base64')}`));
  }

  /** Checks the server's proof: a server that does not know the password cannot fake a login. */
  verifyFinal(data: Buffer): void {
    const verifier = Buffer.from(parseAttributes(data.toString('utf8')).get('v') ?? '', 'base64');
    const expected = this.expectedServerSignature;
    if (expected === null || verifier.length !== expected.length || !timingSafeEqual(verifier, expected)) {
      throw new Error('PostgreSQL sent a wrong SCRAM server signature');
    }
  }
}
