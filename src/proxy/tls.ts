// TLS for client connections: load the configured certificate once, and upgrade a plain
// socket after the proxy has answered an SSLRequest with 'S'.
// @see https://www.postgresql.org/docs/15/protocol-flow.html#id-1.10.6.7.12
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { createSecureContext, type SecureContext, TLSSocket } from 'node:tls';

export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

/** A bad TLS configuration: the message names the file and what to do. */
export class TlsConfigError extends Error {
  override readonly name = 'TlsConfigError';
}

function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new TlsConfigError(`cannot read TLS ${what} ${path}: ${(error as Error).message}`);
  }
}

/** Loads cert and key into a SecureContext; fails now (at startup), not on the first client. */
export function loadTlsContext(files: TlsFiles): SecureContext {
  const cert = readPem(files.certFile, 'certificate');
  const key = readPem(files.keyFile, 'private key');
  try {
    return createSecureContext({ cert, key, minVersion: 'TLSv1.2' });
  } catch (error) {
    throw new TlsConfigError(
      `TLS certificate ${files.certFile} and key ${files.keyFile} do not load together: ${(error as Error).message}`,
    );
  }
}

/**
 * Runs the server side of the TLS handshake on `socket`, which must have no 'data' listener
 * left and no unread bytes buffered by the caller (a client that pipelines bytes after
 * SSLRequest is refused before this, as PostgreSQL does, so plaintext cannot be injected).
 * Resolves with the encrypted socket, or rejects on handshake failure or timeout; the caller
 * destroys the socket on rejection.
 */
export function upgradeToTls(
  socket: Socket,
  context: SecureContext,
  handshakeTimeoutMs: number,
): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const secure = new TLSSocket(socket, { isServer: true, secureContext: context });
    const timer = setTimeout(() => {
      cleanup();
      secure.destroy();
      reject(new Error(`TLS handshake did not finish within ${handshakeTimeoutMs} ms`));
    }, handshakeTimeoutMs);
    const onSecure = () => {
      cleanup();
      resolve(secure);
    };
    const onError = (error: Error) => {
      cleanup();
      secure.destroy();
      reject(error);
    };
    const cleanup = () => {
      clearTimeout(timer);
      secure.off('secure', onSecure);
      secure.off('error', onError);
    };
    secure.once('secure', onSecure);
    secure.once('error', onError);
  });
}
