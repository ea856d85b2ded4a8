// Real clients (node-postgres) log in to our SCRAM server, with and without TLS.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { parseAuthFile } from '../../../src/proxy/auth/auth-file.ts';
import { formatScramSecret, scramSecretFromPassword } from '../../../src/proxy/auth/scram.ts';
import { loadTlsContext, TlsConfigError } from '../../../src/proxy/tls.ts';
import { type LoginServer, startLoginServer } from './login-server.ts';

const users = parseAuthFile(
  [
    `"alice" "${formatScramSecret(scramSecretFromPassword('alice pw', Buffer.from('saltsaltsalt')))}"`,
    '"bob" "bob pw"',
  ].join('\n'),
  'test-users.txt',
);

async function login(port: number, user: string, password: string, ssl: boolean): Promise<void> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port,
    user,
    password,
    database: 'app',
    ssl: ssl ? { rejectUnauthorized: false } : false,
    connectionTimeoutMillis: 10_000,
  });
  client.on('error', () => {});
  try {
    await client.connect();
  } finally {
    await client.end().catch(() => {});
  }
}

function rejectsWith(code: string) {
  return (error: unknown) => (error as { code?: string }).code === code;
}

describe('server-side login with node-postgres', () => {
  let dir = '';
  let plain: LoginServer;
  let secure: LoginServer;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'pgward-tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-keyout',
        path.join(dir, 'key.pem'),
        '-out',
        path.join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    const context = loadTlsContext({
      certFile: path.join(dir, 'cert.pem'),
      keyFile: path.join(dir, 'key.pem'),
    });
    plain = await startLoginServer(users, null);
    secure = await startLoginServer(users, context);
  });

  after(async () => {
    await plain?.close();
    await secure?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('accepts the right password for a SCRAM secret and for a plain password', async () => {
    await login(plain.port, 'alice', 'alice pw', false);
    await login(plain.port, 'bob', 'bob pw', false);
    assert.deepEqual(plain.loggedIn, ['alice', 'bob']);
  });

  it('refuses a wrong password and an unknown user with 28P01', async () => {
    await assert.rejects(login(plain.port, 'alice', 'nope', false), rejectsWith('28P01'));
    await assert.rejects(login(plain.port, 'mallory', 'x', false), rejectsWith('28P01'));
  });

  it('does SCRAM over TLS after SSLRequest, right and wrong password', async () => {
    await login(secure.port, 'alice', 'alice pw', true);
    assert.deepEqual(secure.loggedIn, ['alice']);
    await assert.rejects(login(secure.port, 'alice', 'nope', true), rejectsWith('28P01'));
  });

  it('answers N to SSLRequest when TLS is not configured (a client requiring TLS gives up)', async () => {
    await assert.rejects(login(plain.port, 'alice', 'alice pw', true), /does not support SSL/);
  });

  it('names the file when TLS material is missing', () => {
    assert.throws(
      () => loadTlsContext({ certFile: path.join(dir, 'nope.pem'), keyFile: path.join(dir, 'key.pem') }),
      (e: unknown) => e instanceof TlsConfigError && /nope\.pem/.test(e.message),
    );
  });
});
