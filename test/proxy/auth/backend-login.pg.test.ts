// The proxy's client-side auth against a real PostgreSQL: a private cluster on a free port whose
// pg_hba asks each test role for a different method (scram-sha-256, md5, password).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { silentLogger } from '../../../src/log.ts';
import { findBinaries } from '../../../src/postgres/binaries.ts';
import { PostgresInstance } from '../../../src/postgres/instance.ts';
import { ensureOwnedDir, postgresRunAs } from '../../../src/postgres/run-as.ts';
import { parseAuthFile } from '../../../src/proxy/auth/auth-file.ts';
import { BackendAuthenticator } from '../../../src/proxy/auth/client.ts';
import { decodeAuthentication, decodeErrorResponse, decodeReadyForQuery } from '../../../src/wire/backend.ts';
import { FrameKind, MessageFramer } from '../../../src/wire/framer.ts';
import { BackendMessage, TransactionStatus } from '../../../src/wire/protocol.ts';
import { buildStartupMessage } from '../../../src/wire/startup.ts';
import { freePort } from '../../support/ports.ts';
import { type LoginServer, startLoginServer } from './login-server.ts';

type LoginResult = { ok: true; status: TransactionStatus } | { ok: false; code: string; message: string };

/** Logs in over a raw socket using only the codec and BackendAuthenticator. */
function loginRaw(port: number, user: string, password: string | undefined): Promise<LoginResult> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const framer = new MessageFramer({ maxMessageBytes: 1 << 20 });
    const auth = new BackendAuthenticator(user, password);
    const finish = (result: LoginResult) => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(20_000, () => {
      socket.destroy();
      reject(new Error('login timed out'));
    });
    socket.on('error', reject);
    socket.on('connect', () => socket.write(buildStartupMessage({ user, database: 'postgres' })));
    socket.on('data', (chunk) => {
      framer.push(chunk);
      try {
        for (let f = framer.next(); f !== null; f = framer.next()) {
          assert.equal(f.kind, FrameKind.Message);
          if (f.kind !== FrameKind.Message) continue;
          if (f.type === BackendMessage.Authentication) {
            const reply = auth.respond(decodeAuthentication(f));
            if (reply !== null) socket.write(reply);
          } else if (f.type === BackendMessage.ErrorResponse) {
            const fields = decodeErrorResponse(f);
            return finish({ ok: false, code: fields.code, message: fields.message });
          } else if (f.type === BackendMessage.ReadyForQuery) {
            assert.equal(auth.authenticated, true);
            return finish({ ok: true, status: decodeReadyForQuery(f) });
          }
        }
      } catch (error) {
        socket.destroy();
        reject(error);
      }
    });
  });
}

describe('BackendAuthenticator against PostgreSQL 15', () => {
  const runAs = postgresRunAs();
  const dir = mkdtempSync(path.join(tmpdir(), 'pgward-auth-pg-'));
  let instance: PostgresInstance;
  let port = 0;
  let loginServer: LoginServer | null = null;

  before(async () => {
    ensureOwnedDir(runAs, dir, 0o755);
    port = await freePort();
    instance = new PostgresInstance({
      binaries: findBinaries(),
      runAs,
      dataDir: path.join(dir, 'data'),
      host: '127.0.0.1',
      port,
      superuser: 'postgres',
      replicationUser: 'postgres',
      clusterName: 'authtest',
      nodeName: 'n1',
      parameters: { fsync: false, max_connections: 20 },
      logFile: path.join(dir, 'postgres.log'),
      logger: silentLogger(),
    });
    await instance.initdb();
    instance.writeConfig(null);
    writeFileSync(
      path.join(dir, 'data', 'pg_hba.conf'),
      [
        'host all postgres 127.0.0.1/32 trust',
        'host all scram_role 127.0.0.1/32 scram-sha-256',
        'host all md5_role 127.0.0.1/32 md5',
        'host all clear_role 127.0.0.1/32 password',
        '',
      ].join('\n'),
    );
    await instance.start();
    await instance.query(
      "SET password_encryption = 'scram-sha-256'; CREATE ROLE scram_role LOGIN PASSWORD 'scram pw'",
    );
    await instance.query("SET password_encryption = 'md5'; CREATE ROLE md5_role LOGIN PASSWORD 'md5 pw'");
    await instance.query("CREATE ROLE clear_role LOGIN PASSWORD 'clear pw'");
  });

  after(async () => {
    await loginServer?.close();
    await instance?.stop('immediate').catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });

  for (const [role, password] of [
    ['scram_role', 'scram pw'],
    ['md5_role', 'md5 pw'],
    ['clear_role', 'clear pw'],
  ] as const) {
    it(`logs in as ${role} with the right password and is refused with a wrong one`, async () => {
      assert.deepEqual(await loginRaw(port, role, password), { ok: true, status: TransactionStatus.Idle });
      const wrong = await loginRaw(port, role, 'wrong');
      assert.equal(wrong.ok, false);
      assert.equal(!wrong.ok && wrong.code, '28P01');
    });
  }

  it('verifies clients against the SCRAM secret PostgreSQL stored in pg_authid', async () => {
    const rows = await instance.query<{ rolpassword: string }>(
      "SELECT rolpassword FROM pg_authid WHERE rolname = 'scram_role'",
    );
    const users = parseAuthFile(`"scram_role" "${rows[0]!.rolpassword}"`, 'pg_authid');
    loginServer = await startLoginServer(users, null);
    const client = new pg.Client({
      host: '127.0.0.1',
      port: loginServer.port,
      user: 'scram_role',
      password: 'scram pw',
    });
    await client.connect();
    await client.end();
    assert.deepEqual(loginServer.loggedIn, ['scram_role']);
  });
});
