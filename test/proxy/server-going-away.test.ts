// In process, against a fake PostgreSQL: a server FATAL that means the server is going
// away (57P01) in the middle of a request reaches the client only as the backend-loss
// verdict (one FATAL 08007 for an autocommit statement, never PostgreSQL's 57P01 first),
// and a hook ending the session through ctx.close sends exactly one FATAL.
import assert from 'node:assert/strict';
import type { Duplex } from 'node:stream';
import { test } from 'node:test';
import { silentLogger } from '../../src/log.ts';
import { BackendConnection, type BackendConnector } from '../../src/proxy/backend.ts';
import { type ClientRequest, NoopHooks, type RequestContext } from '../../src/proxy/hooks.ts';
import {
  AUTHENTICATION_OK,
  buildBackendKeyData,
  buildCommandComplete,
  buildFatalError,
  buildReadyForQuery,
  decodeErrorResponse,
} from '../../src/wire/backend.ts';
import { FrameKind, MessageFramer } from '../../src/wire/framer.ts';
import { buildQuery, decodeQuery } from '../../src/wire/frontend.ts';
import { TransactionStatus } from '../../src/wire/protocol.ts';
import { buildStartupMessage } from '../../src/wire/startup.ts';
import { primaryView } from '../support/proxy.ts';
import { duplexPair, inProcessProxy } from '../support/proxy-in-process.ts';
import { waitFor } from '../support/wait.ts';

const READY = buildReadyForQuery(TransactionStatus.Idle);

/**
 * A fake PostgreSQL whose backend dies with FATAL 57P01 on a query containing 'die'; on
 * port `startingUpPort` it refuses every login with 57P03, as a server in crash recovery does.
 */
function dyingServerConnector(startingUpPort = -1): BackendConnector {
  return async (endpoint) => {
    const [proxySide, serverSide] = duplexPair();
    const framer = new MessageFramer({ maxMessageBytes: 1 << 20, startup: true });
    serverSide.on('error', () => {});
    serverSide.on('data', (chunk: Buffer) => {
      framer.push(chunk);
      for (let frame = framer.next(); frame !== null; frame = framer.next()) {
        if (frame.kind !== FrameKind.Message) continue;
        if (frame.type === 0 && endpoint.port === startingUpPort) {
          serverSide.end(buildFatalError('57P03', 'the database system is starting up'));
          return;
        }
        if (frame.type === 0) {
          serverSide.write(Buffer.concat([AUTHENTICATION_OK, buildBackendKeyData(7, 7), READY]));
        } else if (frame.type === 0x51 && decodeQuery(frame).includes('die')) {
          serverSide.end(
            buildFatalError('57P01', 'terminating connection due to unexpected postmaster exit'),
          );
          return;
        } else if (frame.type === 0x51) {
          serverSide.write(Buffer.concat([buildCommandComplete('SELECT 0'), READY]));
        }
      }
    });
    return proxySide;
  };
}

function reader(client: Duplex): { errors: string[]; closed: () => boolean; readies: () => number } {
  const framer = new MessageFramer({ maxMessageBytes: 1 << 20 });
  const errors: string[] = [];
  let readies = 0;
  let closed = false;
  client.on('data', (chunk: Buffer) => {
    framer.push(chunk);
    for (let f = framer.next(); f !== null; f = framer.next()) {
      if (f.kind !== FrameKind.Message) continue;
      if (f.type === 0x45) errors.push(decodeErrorResponse(f).code);
      if (f.type === 0x5a) readies += 1;
    }
  });
  client.on('end', () => {
    closed = true;
  });
  client.on('close', () => {
    closed = true;
  });
  return { errors, closed: () => closed, readies: () => readies };
}

test('a 57P01 FATAL in the middle of a request reaches the client only as the loss verdict (08007)', async (t) => {
  const proxy = await inProcessProxy(t, { connector: dyingServerConnector() });
  const client = proxy.connectClient();
  const seen = reader(client);
  client.write(buildStartupMessage({ user: 'app', database: 'app' }));
  await waitFor(() => seen.readies() === 1, { timeoutMs: 10_000, what: 'the login' });
  client.write(buildQuery('SELECT die()'));
  await waitFor(() => seen.closed(), { timeoutMs: 10_000, what: 'the session closed' });
  assert.deepEqual(seen.errors, ['08007']);
});

class ClosingHooks extends NoopHooks {
  override readonly interceptsRequests = true;
  override async onRequest(ctx: RequestContext, request: ClientRequest): Promise<boolean> {
    if (request.kind !== 'query' || request.sql !== 'bye') return false;
    ctx.close('57P01', 'closed by the hook');
    return true;
  }
}

test('a hook ending the session with ctx.close sends exactly one FATAL', async (t) => {
  const proxy = await inProcessProxy(t, { connector: dyingServerConnector(), hooks: new ClosingHooks() });
  const client = proxy.connectClient();
  const seen = reader(client);
  client.write(buildStartupMessage({ user: 'app', database: 'app' }));
  await waitFor(() => seen.readies() === 1, { timeoutMs: 10_000, what: 'the login' });
  client.write(buildQuery('SELECT 1'));
  await waitFor(() => seen.readies() === 2, { timeoutMs: 10_000, what: 'a normal query answered' });
  client.write(buildQuery('bye'));
  await waitFor(() => seen.closed(), { timeoutMs: 10_000, what: 'the session closed' });
  assert.deepEqual(seen.errors, ['57P01']);
});

test('a login refused with 57P03 (server starting up) is held like an unreachable primary, then moves on', async (t) => {
  const proxy = await inProcessProxy(t, {
    connector: dyingServerConnector(1),
    config: { holdTimeoutMs: 60_000 },
    view: primaryView(1, { host: '127.0.0.1', port: 1 }),
  });
  const client = proxy.connectClient();
  const seen = reader(client);
  client.write(buildStartupMessage({ user: 'app', database: 'app' }));
  await waitFor(() => proxy.server.stats().heldTotal >= 1, { timeoutMs: 10_000, what: 'the login held' });
  proxy.topology.set(primaryView(2, { host: '127.0.0.1', port: 2 }));
  await waitFor(() => seen.readies() === 1, { timeoutMs: 10_000, what: 'the login completed' });
  assert.deepEqual(seen.errors, []);
  assert.equal(seen.closed(), false);
});

test('a connect hanging on a dead primary is abandoned once the topology names a new one', async (t) => {
  const fake = dyingServerConnector();
  const hanging: (() => void)[] = [];
  t.after(() => {
    for (const fail of hanging) fail();
  });
  // Port 1 is a machine that died: the connect neither succeeds nor is refused.
  const connector: BackendConnector = (endpoint) =>
    endpoint.port === 1
      ? new Promise((_, reject) => hanging.push(() => reject(new Error('connect timed out'))))
      : fake(endpoint);
  const proxy = await inProcessProxy(t, {
    connector,
    config: { holdTimeoutMs: 120_000, loginTimeoutMs: 120_000 },
    view: primaryView(1, { host: '127.0.0.1', port: 1 }),
  });
  const client = proxy.connectClient();
  const seen = reader(client);
  client.write(buildStartupMessage({ user: 'app', database: 'app' }));
  await waitFor(() => hanging.length === 1, { timeoutMs: 10_000, what: 'the connect to the dead primary' });
  proxy.topology.set(primaryView(2, { host: '127.0.0.1', port: 2 }));
  await waitFor(() => seen.readies() === 1, { timeoutMs: 10_000, what: 'the login on the new primary' });
  client.write(buildQuery('SELECT 1'));
  await waitFor(() => seen.readies() === 2, { timeoutMs: 10_000, what: 'a query answered' });
  assert.deepEqual(seen.errors, []);
});

test('a backend connect that completes after the connect timeout is closed, not leaked', async () => {
  const [proxySide, serverSide] = duplexPair();
  serverSide.on('error', () => {});
  let connected!: () => void;
  const late = new Promise<Duplex>((resolve) => {
    connected = () => resolve(proxySide);
  });
  await assert.rejects(
    BackendConnection.open({
      connector: () => late,
      endpoint: { host: '127.0.0.1', port: 1 },
      term: 1,
      database: 'app',
      user: 'app',
      password: undefined,
      timeoutMs: 20,
      logger: silentLogger(),
    }),
    /did not complete the login within 20 ms/,
  );
  connected();
  await waitFor(() => proxySide.destroyed, { timeoutMs: 10_000, what: 'the late socket destroyed' });
});
