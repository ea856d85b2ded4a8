// TLS + SCRAM-SHA-256 client authentication against a PgBouncer-style auth file: the
// right password logs in over TLS, a wrong one gets 28P01, an unknown user too; with TLS
// configured a plain connection still works (sslmode=disable) and GSSENC is refused.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import { formatScramSecret, scramSecretFromPassword } from '../../src/proxy/auth/scram.ts';
import { buildGSSENCRequest } from '../../src/wire/startup.ts';
import { startProxy, tempDatabase } from '../support/proxy.ts';
import { RawClient } from '../support/raw-client.ts';
import { tempDir } from '../support/tmp.ts';

const run = promisify(execFile);

test('TLS + SCRAM: right password in, wrong password and unknown user refused with 28P01', async (t) => {
  const dir = tempDir(t, 'pgward-tls-');
  const certFile = path.join(dir, 'server.crt');
  const keyFile = path.join(dir, 'server.key');
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=127.0.0.1',
    '-keyout',
    keyFile,
    '-out',
    certFile,
  ]);
  const authFile = path.join(dir, 'users.txt');
  const secret = scramSecretFromPassword('s3cret-pw', Buffer.from('0123456789abcdef'), 4096);
  writeFileSync(authFile, `"alice" "${formatScramSecret(secret)}"\n"bob" "plain-pw"\n`);
  const proxy = await startProxy(t, {
    auth: { method: 'scram-sha-256', authFile },
    tls: { certFile, keyFile },
    backendUser: 'postgres',
  });
  const database = await tempDatabase(t);
  const connect = async (user: string, password: string, ssl: boolean) => {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: proxy.port,
      user,
      password,
      database,
      ssl: ssl ? { rejectUnauthorized: false } : false,
    });
    client.on('error', () => {});
    await client.connect();
    t.after(() => client.end().catch(() => {}));
    return client;
  };
  const alice = await connect('alice', 's3cret-pw', true);
  const stream = (alice as unknown as { connection: { stream: { encrypted?: boolean } } }).connection.stream;
  assert.equal(stream.encrypted, true, 'the client connection to the proxy is TLS');
  assert.equal((await alice.query('SELECT current_user AS u')).rows[0].u, 'postgres');
  const bob = await connect('bob', 'plain-pw', false);
  assert.equal((await bob.query('SELECT 1 AS one')).rows[0].one, 1);
  await assert.rejects(connect('alice', 'wrong', true), (e: Error & { code?: string }) => e.code === '28P01');
  await assert.rejects(
    connect('mallory', 'whatever', true),
    (e: Error & { code?: string }) => e.code === '28P01',
  );

  const gss = await RawClient.connect(proxy.port);
  t.after(() => gss.close());
  gss.write(buildGSSENCRequest());
  await gss.until(() => gss.received.length >= 1, 10_000);
  assert.equal(gss.received.toString('latin1', 0, 1), 'N');
});
