// The proxy's side of password authentication when it logs in to PostgreSQL with its own
// configured credentials: cleartext, MD5 and SCRAM-SHA-256 (RFC 5802/7677, no channel binding).
// A pure state machine: feed each decoded Authentication* request, send what it returns.
// @see https://www.postgresql.org/docs/15/protocol-flow.html#PROTOCOL-FLOW-START-UP
import { createHash } from 'node:crypto';
import type { AuthenticationRequest } from '../../wire/backend.ts';
import { buildPasswordMessage, buildSASLInitialResponse, buildSASLResponse } from '../../wire/frontend.ts';
import { AuthenticationCode } from '../../wire/protocol.ts';
import {
  hmac,
  isValidNonce,
  MAX_SCRAM_ITERATIONS,
  newScramNonce,
  parseAttributes,
  SCRAM_SHA_256,
  saltedPassword,
  sameBytes,
  sha256,
  xor,
} from './scram.ts';

/** PostgreSQL asked for something we cannot or will not do, or proved it does not know the password. */
export class BackendAuthError extends Error {
  override readonly name = 'BackendAuthError';
}

export function md5PasswordResponse(user: string, password: string, salt: Uint8Array): string {
  const inner = createHash('md5')
    .update(password + user)
    .digest('hex');
  return 'md5' + createHash('md5').update(inner).update(salt).digest('hex');
}

/** One SCRAM-SHA-256 exchange as the client. */
export class ScramClient {
  private clientFirstBare = '';
  private expectedServerSignature: Buffer | null = null;
  private verified = false;

  /** @param clientNonce printable ASCII without commas; random by default (newScramNonce) */
  constructor(
    private readonly password: string,
    private readonly clientNonce: string = newScramNonce(),
  ) {
    if (!isValidNonce(clientNonce)) throw new Error('client nonce must be printable ASCII without commas');
  }

  /** SASLInitialResponse for AuthenticationSASL. */
  initialResponse(mechanisms: readonly string[]): Buffer {
    if (!mechanisms.includes(SCRAM_SHA_256)) {
      throw new BackendAuthError(
        `PostgreSQL offers SASL mechanisms ${mechanisms.join(', ')}, not ${SCRAM_SHA_256}`,
      );
    }
    // PostgreSQL takes the user from the startup packet and ignores SCRAM's n=, as libpq sends it.
    this.clientFirstBare = `n=,r=${this.clientNonce}`;
    return buildSASLInitialResponse(SCRAM_SHA_256, Buffer.from(`n,,${this.clientFirstBare}`));
  }

  /** SASLResponse for AuthenticationSASLContinue (the server-first-message). */
  continueResponse(data: Buffer): Buffer {
    if (this.clientFirstBare === '' || this.expectedServerSignature !== null) {
      throw new BackendAuthError('PostgreSQL sent AuthenticationSASLContinue out of order');
    }
    const serverFirst = data.toString('utf8');
    const attributes = new Map(parseAttributes(serverFirst) ?? []);
    const nonce = attributes.get('r') ?? '';
    const salt = Buffer.from(attributes.get('s') ?? '', 'base64');
    const iterations = Number(attributes.get('i'));
    if (
      !nonce.startsWith(this.clientNonce) ||
      nonce.length === this.clientNonce.length ||
      !isValidNonce(nonce) ||
      salt.length === 0 ||
      !Number.isInteger(iterations) ||
      iterations < 1 ||
      iterations > MAX_SCRAM_ITERATIONS
    ) {
      throw new BackendAuthError(`PostgreSQL sent an invalid SCRAM server-first-message: ${serverFirst}`);
    }
    const salted = saltedPassword(this.password, salt, iterations);
    const clientKey = hmac(salted, 'Client Key');
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const proof = xor(clientKey, hmac(sha256(clientKey), authMessage));
    this.expectedServerSignature = hmac(hmac(salted, 'Server Key'), authMessage);
    return buildSASLResponse(Buffer.from(`${withoutProof},p=${proof.toString('base64')}`));
  }

  /** Checks AuthenticationSASLFinal: a server that does not know the password cannot fake a login. */
  verifyFinal(data: Buffer): void {
    const attributes = new Map(parseAttributes(data.toString('utf8')) ?? []);
    const serverError = attributes.get('e');
    if (serverError !== undefined)
      throw new BackendAuthError(`PostgreSQL refused the SCRAM login: ${serverError}`);
    const verifier = Buffer.from(attributes.get('v') ?? '', 'base64');
    const expected = this.expectedServerSignature;
    if (expected === null || !sameBytes(verifier, expected)) {
      throw new BackendAuthError('PostgreSQL sent a wrong SCRAM server signature');
    }
    this.verified = true;
  }

  get serverVerified(): boolean {
    return this.verified;
  }
}

/**
 * Answers PostgreSQL's authentication requests for one login. `respond` returns the message to
 * send, or null when there is nothing to send (AuthenticationOk, or SASLFinal checked); it
 * throws BackendAuthError when the login cannot go on.
 */
export class BackendAuthenticator {
  private scram: ScramClient | null = null;
  private ok = false;

  constructor(
    private readonly user: string,
    private readonly password: string | undefined,
    private readonly clientNonce: string = newScramNonce(),
  ) {}

  /** True once AuthenticationOk arrived (and, after SCRAM, the server proved itself). */
  get authenticated(): boolean {
    return this.ok;
  }

  respond(request: AuthenticationRequest): Buffer | null {
    switch (request.code) {
      case AuthenticationCode.Ok:
        if (this.scram !== null && !this.scram.serverVerified) {
          throw new BackendAuthError('PostgreSQL ended SCRAM without proving it knows the password');
        }
        this.ok = true;
        return null;
      case AuthenticationCode.CleartextPassword:
        return buildPasswordMessage(this.needPassword('password'));
      case AuthenticationCode.MD5Password:
        return buildPasswordMessage(md5PasswordResponse(this.user, this.needPassword('md5'), request.salt));
      case AuthenticationCode.SASL:
        if (this.scram !== null) throw new BackendAuthError('PostgreSQL restarted SASL authentication');
        this.scram = new ScramClient(this.needPassword('scram-sha-256'), this.clientNonce);
        return this.scram.initialResponse(request.mechanisms);
      case AuthenticationCode.SASLContinue:
        return this.sasl().continueResponse(request.data);
      case AuthenticationCode.SASLFinal:
        this.sasl().verifyFinal(request.data);
        return null;
      default:
        throw new BackendAuthError(
          `PostgreSQL asks for an authentication method pgward cannot use (code ${request.code}); ` +
            'configure password, md5 or scram-sha-256 for the proxy user in pg_hba.conf',
        );
    }
  }

  private sasl(): ScramClient {
    if (this.scram === null)
      throw new BackendAuthError('PostgreSQL sent a SASL message before AuthenticationSASL');
    return this.scram;
  }

  private needPassword(method: string): string {
    if (this.password === undefined) {
      throw new BackendAuthError(
        `PostgreSQL asks user "${this.user}" for a password (${method}), but proxy.backendPassword is not set`,
      );
    }
    return this.password;
  }
}
