// Server side of SCRAM-SHA-256 as PostgreSQL does it: no channel binding (we never offer
// SCRAM-SHA-256-PLUS, so gs2 header `n,,` or `y,,`), no authzid, the user name is the startup
// packet's, not SCRAM's `n=`. A pure state machine: nonces come in, messages go out.
// @see https://www.postgresql.org/docs/15/sasl-authentication.html and RFC 5802 section 5
import { SqlState } from '../../wire/sqlstate.ts';
import {
  hmac,
  isValidNonce,
  parseAttributes,
  SCRAM_SHA_256,
  type ScramSecret,
  sameBytes,
  scramSecretFromPassword,
  sha256,
  xor,
} from './scram.ts';

export type ScramServerStep =
  /** Send AuthenticationSASLContinue with `data`, then wait for the SASLResponse. */
  | { kind: 'continue'; data: Buffer }
  /** Authenticated: send AuthenticationSASLFinal with `data`, then AuthenticationOk. */
  | { kind: 'success'; data: Buffer }
  /** Send a FATAL ErrorResponse with this SQLSTATE and message, then close. */
  | { kind: 'failure'; code: string; message: string };

const GS2_HEADERS = new Set(['n,,', 'y,,']);

export class ScramServer {
  private state: 'initial' | 'first-sent' | 'done' = 'initial';
  private clientFirstBare = '';
  private serverFirst = '';
  private gs2Header = '';
  private combinedNonce = '';
  private readonly secret: ScramSecret;
  private readonly unknownUser: boolean;

  /**
   * @param user the startup packet's user, for error messages
   * @param secret the user's stored secret, or null for an unknown user: the exchange then runs
   *   against a made-up secret and fails at the proof, so a client cannot probe which users exist
   * @param serverNonce fresh random printable characters (see newScramNonce)
   */
  constructor(
    private readonly user: string,
    secret: ScramSecret | null,
    private readonly serverNonce: string,
  ) {
    if (!isValidNonce(serverNonce)) throw new Error('server nonce must be printable ASCII without commas');
    this.secret =
      secret ?? scramSecretFromPassword(serverNonce, sha256(Buffer.from(`pgward mock salt ${user}`)), 4096);
    this.unknownUser = secret === null;
  }

  /** The mechanisms to list in AuthenticationSASL. */
  static readonly mechanisms: readonly string[] = [SCRAM_SHA_256];

  /** Handles SASLInitialResponse. */
  initial(mechanism: string, data: Buffer | null): ScramServerStep {
    if (this.state !== 'initial') return this.protocolFailure('unexpected SASLInitialResponse');
    this.state = 'done';
    if (mechanism !== SCRAM_SHA_256) {
      return this.protocolFailure(`client selected an invalid SASL authentication mechanism "${mechanism}"`);
    }
    if (data === null) return this.protocolFailure('SASLInitialResponse carries no client-first-message');
    const message = data.toString('utf8');
    // gs2-header: cbind-flag "," [authzid] ","
    const headerEnd = message.indexOf(',', message.indexOf(',') + 1);
    if (headerEnd < 0) return this.malformed('missing gs2 header');
    const gs2Header = message.slice(0, headerEnd + 1);
    if (gs2Header.startsWith('p=')) {
      return this.protocolFailure(
        'channel binding was requested, but pgward does not offer SCRAM-SHA-256-PLUS',
      );
    }
    if (!GS2_HEADERS.has(gs2Header)) return this.malformed('authorization identities are not supported');
    const bare = message.slice(headerEnd + 1);
    const attributes = parseAttributes(bare);
    if (attributes === null || attributes.length < 2) return this.malformed('bad client-first-message');
    const [[n], [r, clientNonce]] = attributes as [[string, string], [string, string]];
    if (n !== 'n' || r !== 'r') return this.malformed('client-first-message must start with n= and r=');
    if (attributes.slice(2).some(([name]) => name === 'm')) {
      return this.malformed('mandatory SCRAM extensions are not supported');
    }
    if (!isValidNonce(clientNonce)) return this.malformed('invalid client nonce');
    this.gs2Header = gs2Header;
    this.clientFirstBare = bare;
    this.combinedNonce = clientNonce + this.serverNonce;
    this.serverFirst = `r=${this.combinedNonce},s=${this.secret.salt.toString('base64')},i=${this.secret.iterations}`;
    this.state = 'first-sent';
    return { kind: 'continue', data: Buffer.from(this.serverFirst, 'utf8') };
  }

  /** Handles SASLResponse (the client-final-message). */
  final(data: Buffer): ScramServerStep {
    if (this.state !== 'first-sent') return this.protocolFailure('unexpected SASLResponse');
    this.state = 'done';
    const message = data.toString('utf8');
    const proofAt = message.lastIndexOf(',p=');
    if (proofAt < 0) return this.malformed('client-final-message has no proof');
    const withoutProof = message.slice(0, proofAt);
    const attributes = parseAttributes(withoutProof);
    if (attributes === null || attributes.length < 2) return this.malformed('bad client-final-message');
    const [[c, binding], [r, nonce]] = attributes as [[string, string], [string, string]];
    if (c !== 'c' || r !== 'r') return this.malformed('client-final-message must start with c= and r=');
    if (binding !== Buffer.from(this.gs2Header, 'utf8').toString('base64')) {
      return this.malformed('unexpected channel-binding data');
    }
    if (nonce !== this.combinedNonce) return this.malformed('nonce does not match');
    const proof = Buffer.from(message.slice(proofAt + 3), 'base64');
    if (proof.length !== 32) return this.malformed('proof has the wrong length');

    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const clientKey = xor(proof, hmac(this.secret.storedKey, authMessage));
    if (!sameBytes(sha256(clientKey), this.secret.storedKey) || this.unknownUser) {
      return {
        kind: 'failure',
        code: SqlState.InvalidPassword,
        message: `password authentication failed for user "${this.user}"`,
      };
    }
    const serverSignature = hmac(this.secret.serverKey, authMessage);
    return { kind: 'success', data: Buffer.from(`v=${serverSignature.toString('base64')}`, 'utf8') };
  }

  private malformed(why: string): ScramServerStep {
    return this.protocolFailure(`malformed SCRAM message: ${why}`);
  }

  private protocolFailure(message: string): ScramServerStep {
    this.state = 'done';
    return { kind: 'failure', code: SqlState.ProtocolViolation, message };
  }
}
