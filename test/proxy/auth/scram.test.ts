import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BackendAuthError, BackendAuthenticator, ScramClient } from '../../../src/proxy/auth/client.ts';
import {
  formatScramSecret,
  parseScramSecret,
  saslprep,
  scramSecretFromPassword,
} from '../../../src/proxy/auth/scram.ts';
import { ScramServer, type ScramServerStep } from '../../../src/proxy/auth/scram-server.ts';
import {
  type AuthenticationRequest,
  buildAuthenticationSASLFinal,
  decodeAuthentication,
} from '../../../src/wire/backend.ts';
import { decodeSASLInitialResponse, decodeSASLResponse } from '../../../src/wire/frontend.ts';
import { AuthenticationCode } from '../../../src/wire/protocol.ts';

const view = (message: Buffer) => ({ buffer: message, bodyStart: 5, end: message.length });
const salt = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');

/** Runs a whole exchange between our client and our server; returns the server's last step. */
function exchange(clientPassword: string, secret: ReturnType<typeof scramSecretFromPassword> | null) {
  const client = new ScramClient(clientPassword, 'clientnonce123');
  const server = new ScramServer('alice', secret, 'servernonce456');
  const initial = decodeSASLInitialResponse(view(client.initialResponse(['SCRAM-SHA-256'])));
  const first = server.initial(initial.mechanism, initial.data);
  assert.equal(first.kind, 'continue');
  const clientFinal = decodeSASLResponse(view(client.continueResponse((first as { data: Buffer }).data)));
  const last = server.final(clientFinal);
  return { client, last };
}

function assertFailure(step: ScramServerStep, code: string, pattern: RegExp): void {
  assert.equal(step.kind, 'failure', JSON.stringify(step));
  assert.ok(step.kind === 'failure');
  assert.equal(step.code, code);
  assert.match(step.message, pattern);
}

describe('SCRAM-SHA-256', () => {
  it('server side reproduces the RFC 7677 section 3 example exactly', () => {
    const secret = scramSecretFromPassword('pencil', salt, 4096);
    const server = new ScramServer('user', secret, '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0');
    const first = server.initial('SCRAM-SHA-256', Buffer.from('n,,n=user,r=rOprNGfwEbeRWgbNEkqO'));
    assert.deepEqual(first, {
      kind: 'continue',
      data: Buffer.from(
        'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
      ),
    });
    const final = server.final(
      Buffer.from(
        'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
      ),
    );
    assert.deepEqual(final, {
      kind: 'success',
      data: Buffer.from('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4='),
    });
  });

  it('our client and server agree on the right password, and the client checks the server', () => {
    const { client, last } = exchange('s3cret', scramSecretFromPassword('s3cret', salt));
    assert.equal(last.kind, 'success');
    client.verifyFinal((last as { data: Buffer }).data);
    assert.equal(client.serverVerified, true);
  });

  it('a wrong password fails with 28P01', () => {
    assertFailure(
      exchange('wrong', scramSecretFromPassword('s3cret', salt)).last,
      '28P01',
      /password authentication failed for user "alice"/,
    );
  });

  it('an unknown user runs the whole exchange and fails the same way', () => {
    assertFailure(exchange('anything', null).last, '28P01', /password authentication failed/);
  });

  it('the client refuses a server signature that does not match', () => {
    const { client } = exchange('s3cret', scramSecretFromPassword('s3cret', salt));
    assert.throws(
      () => client.verifyFinal(Buffer.from(`v=${Buffer.alloc(32).toString('base64')}`)),
      BackendAuthError,
    );
    assert.throws(() => client.verifyFinal(Buffer.from('e=invalid-proof')), /invalid-proof/);
  });

  describe('the server refuses malformed exchanges with 08P01', () => {
    const secret = scramSecretFromPassword('pw', salt);
    const cases: Array<[string, string, string]> = [
      ['another mechanism', 'SCRAM-SHA-1', 'n,,n=,r=abc'],
      ['channel binding required', 'SCRAM-SHA-256', 'p=tls-server-end-point,,n=,r=abc'],
      ['an authzid', 'SCRAM-SHA-256', 'n,a=bob,n=,r=abc'],
      ['no gs2 header', 'SCRAM-SHA-256', 'n=,r=abc'],
      ['attributes out of order', 'SCRAM-SHA-256', 'n,,r=abc,n='],
      ['a mandatory extension', 'SCRAM-SHA-256', 'n,,n=,r=abc,m=ext'],
      ['a nonce with a control byte', 'SCRAM-SHA-256', 'n,,n=,r=a\u0001c'],
    ];
    for (const [what, mechanism, message] of cases) {
      it(what, () => {
        const step = new ScramServer('alice', secret, 'srv').initial(mechanism, Buffer.from(message));
        assertFailure(step, '08P01', /./);
      });
    }

    const finals: Array<[string, string]> = [
      ['a different nonce', 'c=biws,r=abcXXX,p=AAAA'],
      ['wrong channel-binding data', 'c=eSws,r=abcsrv,p=AAAA'],
      ['no proof', 'c=biws,r=abcsrv'],
      ['a short proof', 'c=biws,r=abcsrv,p=AAAA'],
    ];
    for (const [what, message] of finals) {
      it(`client-final with ${what}`, () => {
        const server = new ScramServer('alice', secret, 'srv');
        assert.equal(server.initial('SCRAM-SHA-256', Buffer.from('n,,n=,r=abc')).kind, 'continue');
        assertFailure(server.final(Buffer.from(message)), '08P01', /malformed SCRAM message/);
      });
    }

    it('messages out of order', () => {
      const server = new ScramServer('alice', secret, 'srv');
      assertFailure(server.final(Buffer.from('c=biws,r=x,p=AAAA')), '08P01', /unexpected SASLResponse/);
    });
  });

  it('stored secrets round-trip through their text form', () => {
    const secret = scramSecretFromPassword('pw', salt, 4096);
    assert.deepEqual(parseScramSecret(formatScramSecret(secret)), secret);
    assert.equal(parseScramSecret('SCRAM-SHA-256$0:AAAA$AAAA:AAAA'), null);
    assert.equal(parseScramSecret('md5abc'), null);
  });

  it('SASLprep maps non-ASCII spaces and normalises, and leaves ASCII alone', () => {
    assert.equal(saslprep('I\u00adX'), 'IX');
    assert.equal(saslprep('a\u00a0b'), 'a b');
    assert.equal(saslprep('\u2168'), 'IX');
    assert.equal(saslprep('plain ascii!'), 'plain ascii!');
  });
});

describe('BackendAuthenticator', () => {
  const req = (r: AuthenticationRequest) => r;

  it('answers cleartext and MD5 requests', () => {
    const auth = new BackendAuthenticator('bob', 'pw');
    const clear = auth.respond(req({ code: AuthenticationCode.CleartextPassword }));
    assert.deepEqual(clear?.subarray(5), Buffer.from('pw\0'));
    const md5 = auth.respond(req({ code: AuthenticationCode.MD5Password, salt: Buffer.from([1, 2, 3, 4]) }));
    assert.match(md5!.subarray(5).toString(), /^md5[0-9a-f]{32}\0$/);
    assert.equal(auth.respond(req({ code: AuthenticationCode.Ok })), null);
    assert.equal(auth.authenticated, true);
  });

  it('runs SCRAM against our server and refuses AuthenticationOk before the server proved itself', () => {
    const auth = new BackendAuthenticator('bob', 'pw', 'nonce1');
    const server = new ScramServer('bob', scramSecretFromPassword('pw', salt), 'nonce2');
    const initial = decodeSASLInitialResponse(
      view(auth.respond(req({ code: AuthenticationCode.SASL, mechanisms: ['SCRAM-SHA-256'] }))!),
    );
    const first = server.initial(initial.mechanism, initial.data) as { data: Buffer };
    const response = auth.respond(req({ code: AuthenticationCode.SASLContinue, data: first.data }))!;
    assert.throws(() => auth.respond(req({ code: AuthenticationCode.Ok })), /without proving/);
    const final = server.final(decodeSASLResponse(view(response))) as { data: Buffer };
    assert.equal(auth.respond(decodeAuthentication(view(buildAuthenticationSASLFinal(final.data)))), null);
    assert.equal(auth.respond(req({ code: AuthenticationCode.Ok })), null);
    assert.equal(auth.authenticated, true);
  });

  it('says what to configure when it cannot answer', () => {
    assert.throws(
      () =>
        new BackendAuthenticator('bob', undefined).respond(
          req({ code: AuthenticationCode.MD5Password, salt: Buffer.alloc(4) }),
        ),
      /proxy.backendPassword is not set/,
    );
    assert.throws(
      () => new BackendAuthenticator('bob', 'pw').respond(req({ code: AuthenticationCode.GSS })),
      /pg_hba.conf/,
    );
    assert.throws(
      () =>
        new BackendAuthenticator('bob', 'pw').respond(
          req({ code: AuthenticationCode.SASL, mechanisms: ['SCRAM-SHA-256-PLUS'] }),
        ),
      /not SCRAM-SHA-256/,
    );
    assert.throws(
      () =>
        new BackendAuthenticator('bob', 'pw').respond(
          req({ code: AuthenticationCode.SASLContinue, data: Buffer.from('r=x') }),
        ),
      /before AuthenticationSASL/,
    );
  });
});
