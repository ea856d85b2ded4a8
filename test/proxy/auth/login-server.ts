// A minimal PostgreSQL login endpoint built only from the codec and the auth modules: SSLRequest
// (TLS when a context is given), SCRAM-SHA-256 against an auth file, then an idle session that
// answers nothing. Lets real clients (node-postgres, psql) check our server-side auth.
import net from 'node:net';
import type { SecureContext } from 'node:tls';
import { scramSecretOf, type UserSecret } from '../../../src/proxy/auth/auth-file.ts';
import { newScramNonce } from '../../../src/proxy/auth/scram.ts';
import { ScramServer } from '../../../src/proxy/auth/scram-server.ts';
import { upgradeToTls } from '../../../src/proxy/tls.ts';
import {
  AUTHENTICATION_OK,
  buildAuthenticationSASL,
  buildAuthenticationSASLContinue,
  buildAuthenticationSASLFinal,
  buildBackendKeyData,
  buildFatalError,
  buildParameterStatus,
  READY_FOR_QUERY_IDLE,
} from '../../../src/wire/backend.ts';
import { ProtocolError } from '../../../src/wire/errors.ts';
import { FrameKind, type MessageFrame, MessageFramer } from '../../../src/wire/framer.ts';
import { decodeSASLInitialResponse, decodeSASLResponse } from '../../../src/wire/frontend.ts';
import { FrontendMessage } from '../../../src/wire/protocol.ts';
import { ENCRYPTION_ACCEPTED, ENCRYPTION_REFUSED, parseStartupPacket } from '../../../src/wire/startup.ts';

export interface LoginServer {
  port: number;
  /** Users that completed a login, in order. */
  loggedIn: string[];
  close(): Promise<void>;
}

export async function startLoginServer(
  users: Map<string, UserSecret>,
  tls: SecureContext | null,
): Promise<LoginServer> {
  const loggedIn: string[] = [];
  const sockets = new Set<net.Socket>();
  const salt = Buffer.from(newScramNonce());
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    serve(socket).catch(() => socket.destroy());
  });

  async function serve(plain: net.Socket): Promise<void> {
    let socket: net.Socket = plain;
    const framer = new MessageFramer({ maxMessageBytes: 8192, startup: true });
    const frames: MessageFrame[] = [];
    let wake: (() => void) | null = null;
    const onData = (chunk: Buffer) => {
      framer.push(chunk);
      try {
        for (let f = framer.next(); f !== null; f = framer.next()) {
          if (f.kind === FrameKind.Message) frames.push(f);
        }
      } catch (error) {
        fail(error instanceof ProtocolError ? error : new ProtocolError(String(error)));
      }
      wake?.();
    };
    const fail = (error: ProtocolError) => {
      socket.end(buildFatalError(error.code, error.message));
    };
    const nextFrame = async (): Promise<MessageFrame> => {
      while (frames.length === 0) {
        if (socket.destroyed) throw new Error('client went away');
        await new Promise<void>((resolve) => {
          wake = resolve;
          socket.once('close', resolve);
        });
      }
      return frames.shift()!;
    };
    socket.on('data', onData);

    let packet = parseStartupPacket(await nextFrame());
    if (packet.kind === 'ssl') {
      if (tls === null) {
        socket.write(ENCRYPTION_REFUSED);
        framer.expectStartupPacket();
      } else {
        if (framer.bufferedBytes > 0) return fail(new ProtocolError('bytes sent after SSLRequest'));
        socket.off('data', onData);
        socket.write(ENCRYPTION_ACCEPTED);
        socket = await upgradeToTls(plain, tls, 10_000);
        socket.on('error', () => socket.destroy());
        socket.on('close', () => plain.destroy());
        framer.expectStartupPacket();
        socket.on('data', onData);
      }
      packet = parseStartupPacket(await nextFrame());
    }
    if (packet.kind !== 'startup') return fail(new ProtocolError(`unexpected ${packet.kind} packet`));
    const user = packet.params.get('user')!;
    const entry = users.get(user);
    const scram = new ScramServer(
      user,
      entry === undefined ? null : scramSecretOf(entry, salt),
      newScramNonce(),
    );
    socket.write(buildAuthenticationSASL([...ScramServer.mechanisms]));
    const initialFrame = await nextFrame();
    if (initialFrame.type !== FrontendMessage.Password)
      return fail(new ProtocolError('expected SASLInitialResponse'));
    const initial = decodeSASLInitialResponse(initialFrame);
    const first = scram.initial(initial.mechanism, initial.data);
    if (first.kind === 'failure') return fail(new ProtocolError(first.message, first.code));
    socket.write(buildAuthenticationSASLContinue(first.data));
    const final = scram.final(decodeSASLResponse(await nextFrame()));
    if (final.kind !== 'success') {
      return fail(
        new ProtocolError(
          final.kind === 'failure' ? final.message : 'unexpected step',
          final.kind === 'failure' ? final.code : '08P01',
        ),
      );
    }
    loggedIn.push(user);
    socket.write(
      Buffer.concat([
        buildAuthenticationSASLFinal(final.data),
        AUTHENTICATION_OK,
        buildParameterStatus('server_version', '15.0'),
        buildParameterStatus('client_encoding', 'UTF8'),
        buildBackendKeyData(1, 2),
        READY_FOR_QUERY_IDLE,
      ]),
    );
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    loggedIn,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
