// Drive proxy client sessions in process, without sockets: an in-memory Duplex pair for
// the client side and a backend connector that is either a scripted fake PostgreSQL or
// the real one on 127.0.0.1:5432. For fuzzers and protocol tests.
//
//   const proxy = await inProcessProxy(t, { connector: fakePostgresConnector() });
//   const client = proxy.connectClient();      // a Duplex: write frontend bytes, read backend bytes

import { Duplex } from 'node:stream';
import type { TestContext } from 'node:test';
import { type ClusterView, StaticTopology } from '../../src/cluster/view.ts';
import { silentLogger } from '../../src/log.ts';
import { type BackendConnector, tcpConnector } from '../../src/proxy/backend.ts';
import { type ProxyConfig, proxyConfigSchema } from '../../src/proxy/config.ts';
import type { ProxyHooks } from '../../src/proxy/hooks.ts';
import { ProxyServer } from '../../src/proxy/server.ts';
import {
  AUTHENTICATION_OK,
  BIND_COMPLETE,
  buildBackendKeyData,
  buildCommandComplete,
  buildParameterStatus,
  buildReadyForQuery,
  CLOSE_COMPLETE,
  NO_DATA,
  PARSE_COMPLETE,
} from '../../src/wire/backend.ts';
import { FrameKind, MessageFramer } from '../../src/wire/framer.ts';
import { TransactionStatus } from '../../src/wire/protocol.ts';
import { primaryView } from './proxy.ts';

/** Two connected in-memory streams: what one end writes, the other reads. */
export function duplexPair(): [Duplex, Duplex] {
  const ends: Duplex[] = [];
  const make = (peerIndex: number): Duplex =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        const peer = ends[peerIndex]!;
        if (!peer.destroyed) peer.push(chunk);
        callback();
      },
      final(callback) {
        const peer = ends[peerIndex]!;
        if (!peer.destroyed) peer.push(null);
        callback();
      },
      destroy(error, callback) {
        const peer = ends[peerIndex]!;
        if (!peer.destroyed) peer.destroy();
        callback(error);
      },
    });
  ends.push(make(1), make(0));
  return [ends[0]!, ends[1]!];
}

/**
 * A fake PostgreSQL: trust login, then every message answered the simplest valid way
 * (Query → CommandComplete "SELECT 0" + ReadyForQuery, Parse → ParseComplete, ...).
 */
export function fakePostgresConnector(): BackendConnector {
  let nextPid = 1000;
  return async () => {
    const [proxySide, serverSide] = duplexPair();
    const framer = new MessageFramer({ maxMessageBytes: 1 << 30, startup: true });
    const pid = nextPid++;
    serverSide.on('data', (chunk: Buffer) => {
      framer.push(chunk);
      for (let frame = framer.next(); frame !== null; frame = framer.next()) {
        if (frame.kind !== FrameKind.Message) continue;
        const reply = answer(frame.type, pid);
        if (reply === 'close') {
          serverSide.end();
          return;
        }
        if (reply !== null) serverSide.write(reply);
      }
    });
    serverSide.on('error', () => {});
    return proxySide;
  };
}

const READY = buildReadyForQuery(TransactionStatus.Idle);

function answer(type: number, pid: number): Buffer | null | 'close' {
  switch (String.fromCharCode(type)) {
    case '\0':
      return Buffer.concat([
        AUTHENTICATION_OK,
        buildParameterStatus('server_version', '15.0 (fake)'),
        buildParameterStatus('client_encoding', 'UTF8'),
        buildBackendKeyData(pid, 42),
        READY,
      ]);
    case 'Q':
      return Buffer.concat([buildCommandComplete('SELECT 0'), READY]);
    case 'P':
      return PARSE_COMPLETE;
    case 'B':
      return BIND_COMPLETE;
    case 'D':
      return NO_DATA;
    case 'E':
      return buildCommandComplete('SELECT 0');
    case 'C':
      return CLOSE_COMPLETE;
    case 'S':
    case 'F':
      return READY;
    case 'X':
      return 'close';
    default:
      return null;
  }
}

export interface InProcessProxy {
  server: ProxyServer;
  topology: StaticTopology;
  /** A new client connection; its session is already running. */
  connectClient(): Duplex;
}

export async function inProcessProxy(
  t: Pick<TestContext, 'after'>,
  options: {
    config?: Partial<ProxyConfig>;
    connector?: BackendConnector;
    hooks?: ProxyHooks;
    view?: ClusterView;
  } = {},
): Promise<InProcessProxy> {
  const config = proxyConfigSchema.parse({ port: 0, readOnlyPort: 0, poolSize: 4, ...options.config });
  const topology = new StaticTopology(options.view ?? primaryView());
  const server = new ProxyServer({
    config,
    topology,
    logger: silentLogger(),
    connector: options.connector ?? tcpConnector,
    ...(options.hooks === undefined ? {} : { hooks: options.hooks }),
  });
  await server.start();
  t.after(() => server.stop());
  return {
    server,
    topology,
    connectClient() {
      const [client, serverEnd] = duplexPair();
      client.on('error', () => {});
      server.accept(serverEnd, 'write');
      return client;
    },
  };
}
