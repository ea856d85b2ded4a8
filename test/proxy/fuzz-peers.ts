// In-memory peers for driving the proxy's session layer in process: a socket pair that
// behaves like two ends of a TCP connection, and a fake PostgreSQL that speaks just enough
// of the protocol to log in and answer every frontend message.
import { Duplex } from 'node:stream';
import {
  AUTHENTICATION_OK,
  BIND_COMPLETE,
  buildBackendKeyData,
  buildCommandComplete,
  buildErrorResponse,
  buildFatalError,
  buildParameterStatus,
  buildReadyForQuery,
  CLOSE_COMPLETE,
  EMPTY_QUERY_RESPONSE,
  NO_DATA,
  PARSE_COMPLETE,
} from '../../src/wire/backend.ts';
import { FrameKind, MessageFramer } from '../../src/wire/framer.ts';
import { decodeQuery } from '../../src/wire/frontend.ts';
import { FrontendMessage, TransactionStatus } from '../../src/wire/protocol.ts';
import { parseStartupPacket } from '../../src/wire/startup.ts';

/** One end of an in-memory connection. Like net.Socket: no half-open, so a FIN closes both ways. */
export class MemorySocket extends Duplex {
  peer: MemorySocket | null = null;

  constructor() {
    super({ allowHalfOpen: false });
  }

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.peer !== null && !this.peer.destroyed) this.peer.push(chunk);
    callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.peer !== null && !this.peer.destroyed) this.peer.push(null);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const peer = this.peer;
    // The other side sees the connection end, as after a RST or FIN.
    if (peer !== null && !peer.destroyed && !peer.readableEnded) peer.push(null);
    callback(error);
  }

  setNoDelay(): this {
    return this;
  }

  setKeepAlive(): this {
    return this;
  }
}

export function socketPair(): [MemorySocket, MemorySocket] {
  const a = new MemorySocket();
  const b = new MemorySocket();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

const SERVER_PARAMETERS: Array<[string, string]> = [
  ['server_version', '15.0 (fake)'],
  ['client_encoding', 'UTF8'],
  ['DateStyle', 'ISO, MDY'],
  ['integer_datetimes', 'on'],
  ['standard_conforming_strings', 'on'],
];

/**
 * Serves one backend connection on `socket` like PostgreSQL would, for any well-formed input:
 * trust login, CommandComplete for every query (BEGIN/COMMIT/ROLLBACK move the transaction
 * status; a query containing `fake_error` fails) and the extended protocol's answers. Malformed input gets FATAL 08P01 and a close, as from PostgreSQL.
 */
export function serveFakePostgres(socket: Duplex, processId: number): void {
  const framer = new MessageFramer({ maxMessageBytes: 1 << 30, startup: true });
  let status = TransactionStatus.Idle;
  const fail = () => {
    socket.end(buildFatalError('08P01', 'fake postgres: invalid message'));
  };
  const query = (sql: string): Buffer[] => {
    if (sql.trim() === '') return [EMPTY_QUERY_RESPONSE];
    if (/fake_error/.test(sql)) {
      if (status === TransactionStatus.InTransaction) status = TransactionStatus.Failed;
      return [buildErrorResponse({ severity: 'ERROR', code: '42000', message: 'fake error' })];
    }
    if (/^\s*(begin|start)/i.test(sql)) status = TransactionStatus.InTransaction;
    else if (/^\s*(commit|end|rollback|abort)/i.test(sql)) status = TransactionStatus.Idle;
    else if (status === TransactionStatus.Failed) {
      return [buildErrorResponse({ severity: 'ERROR', code: '25P02', message: 'transaction is aborted' })];
    }
    return [buildCommandComplete('SELECT 1')];
  };
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: Buffer) => {
    framer.push(chunk);
    const out: Buffer[] = [];
    try {
      for (let frame = framer.next(); frame !== null; frame = framer.next()) {
        if (frame.kind !== FrameKind.Message) continue;
        const type = frame.type;
        if (type === 0) {
          if (parseStartupPacket(frame).kind !== 'startup') return fail();
          out.push(AUTHENTICATION_OK);
          for (const [name, value] of SERVER_PARAMETERS) out.push(buildParameterStatus(name, value));
          out.push(buildBackendKeyData(processId, 42), buildReadyForQuery(status));
          continue;
        }
        if (type === FrontendMessage.Sync) {
          out.push(buildReadyForQuery(status));
          continue;
        }
        if (type === FrontendMessage.Terminate) {
          socket.end(Buffer.concat(out));
          return;
        }
        if (type === FrontendMessage.Query) {
          out.push(...query(decodeQuery(frame)), buildReadyForQuery(status));
          continue;
        }
        switch (type) {
          case FrontendMessage.Parse:
            out.push(PARSE_COMPLETE);
            break;
          case FrontendMessage.Bind:
            out.push(BIND_COMPLETE);
            break;
          case FrontendMessage.Describe:
            out.push(NO_DATA);
            break;
          case FrontendMessage.Close:
            out.push(CLOSE_COMPLETE);
            break;
          case FrontendMessage.Execute: {
            const answer = query('select');
            out.push(...answer);
            break;
          }
          case FrontendMessage.FunctionCall:
            out.push(buildErrorResponse({ severity: 'ERROR', code: '42883', message: 'no such function' }));
            out.push(buildReadyForQuery(status));
            break;
          case FrontendMessage.Flush:
          case FrontendMessage.CopyData:
          case FrontendMessage.CopyDone:
          case FrontendMessage.CopyFail:
            break;
          default:
            return fail();
        }
      }
    } catch {
      return fail();
    }
    if (out.length > 0) socket.write(Buffer.concat(out));
  });
}
