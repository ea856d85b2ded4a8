// Startup-phase packets: untyped (int32 length, int32 code, body).
// @see https://www.postgresql.org/docs/15/protocol-message-formats.html (StartupMessage,
// SSLRequest, GSSENCRequest, CancelRequest) and protocol-flow.html#PROTOCOL-FLOW-START-UP
import { BodyReader, MessageWriter } from './buffer.ts';
import { ProtocolError } from './errors.ts';
import type { MessageView } from './framer.ts';
import {
  CANCEL_REQUEST_CODE,
  GSSENC_REQUEST_CODE,
  PROTOCOL_VERSION_3_0,
  SSL_REQUEST_CODE,
  SUPPORTED_PROTOCOL_MINOR,
} from './protocol.ts';
import { SqlState } from './sqlstate.ts';

export interface StartupMessage {
  kind: 'startup';
  protocolMajor: number;
  protocolMinor: number;
  /** Parameters in the order sent: user, database, options, application_name, GUCs... */
  params: Map<string, string>;
  /** `_pq_.*` protocol options we do not support (all of them); they go in NegotiateProtocolVersion. */
  unsupportedProtocolOptions: string[];
  /** True when the client must get NegotiateProtocolVersion (3.x minor > 0 or `_pq_.` options). */
  needsNegotiation: boolean;
}

export interface CancelRequest {
  kind: 'cancel';
  processId: number;
  secretKey: number;
}

export type StartupPacket = StartupMessage | CancelRequest | { kind: 'ssl' } | { kind: 'gssenc' };

const REQUEST_PACKET_BYTES = 8;
const CANCEL_PACKET_BYTES = 16;
const PROTOCOL_OPTION_PREFIX = '_pq_.';

/** Parses an untyped startup-phase packet (a frame read with the framer in startup mode). */
export function parseStartupPacket(frame: MessageView): StartupPacket {
  const packetBytes = frame.end - frame.bodyStart + 4;
  const reader = new BodyReader(frame.buffer, frame.bodyStart, frame.end, 'startup');
  const code = reader.uint32();
  switch (code) {
    case SSL_REQUEST_CODE:
    case GSSENC_REQUEST_CODE:
      if (packetBytes !== REQUEST_PACKET_BYTES) {
        throw new ProtocolError(`invalid length ${packetBytes} of an encryption request packet`);
      }
      return code === SSL_REQUEST_CODE ? { kind: 'ssl' } : { kind: 'gssenc' };
    case CANCEL_REQUEST_CODE: {
      if (packetBytes !== CANCEL_PACKET_BYTES) {
        throw new ProtocolError(`invalid length ${packetBytes} of a cancel request packet`);
      }
      return { kind: 'cancel', processId: reader.int32(), secretKey: reader.int32() };
    }
  }
  const major = code >>> 16;
  const minor = code & 0xffff;
  if (major !== 3) {
    throw new ProtocolError(
      `unsupported frontend protocol ${major}.${minor}: pgward supports 3.0 to 3.${SUPPORTED_PROTOCOL_MINOR}`,
    );
  }
  return parseStartupParams(reader, major, minor);
}

function parseStartupParams(reader: BodyReader, major: number, minor: number): StartupMessage {
  const params = new Map<string, string>();
  const unsupportedProtocolOptions: string[] = [];
  for (;;) {
    if (reader.remaining === 0) {
      throw new ProtocolError('startup packet is missing its final terminator');
    }
    const name = reader.cstring();
    if (name === '') break;
    const value = reader.cstring();
    if (name.startsWith(PROTOCOL_OPTION_PREFIX)) {
      unsupportedProtocolOptions.push(name);
      continue;
    }
    // A repeated name overrides the earlier value, as in PostgreSQL.
    params.set(name, value);
  }
  reader.done();
  const user = params.get('user');
  if (user === undefined || user === '') {
    throw new ProtocolError(
      'no PostgreSQL user name specified in startup packet',
      SqlState.InvalidAuthorizationSpecification,
    );
  }
  // PostgreSQL's default: the database is named after the user.
  if (!params.has('database') || params.get('database') === '') params.set('database', user);
  return {
    kind: 'startup',
    protocolMajor: major,
    protocolMinor: minor,
    params,
    unsupportedProtocolOptions,
    needsNegotiation: minor > SUPPORTED_PROTOCOL_MINOR || unsupportedProtocolOptions.length > 0,
  };
}

/** StartupMessage 3.0 for the proxy's own login to PostgreSQL (user, database, then the rest in order). */
export function buildStartupMessage(params: ReadonlyMap<string, string> | Record<string, string>): Buffer {
  const entries = params instanceof Map ? [...params] : Object.entries(params);
  const writer = new MessageWriter(null).int32(PROTOCOL_VERSION_3_0);
  for (const [name, value] of entries) writer.cstring(name).cstring(value);
  return writer.byte(0).finish();
}

export function buildSSLRequest(): Buffer {
  return new MessageWriter(null, 8).uint32(SSL_REQUEST_CODE).finish();
}

export function buildGSSENCRequest(): Buffer {
  return new MessageWriter(null, 8).uint32(GSSENC_REQUEST_CODE).finish();
}

export function buildCancelRequest(processId: number, secretKey: number): Buffer {
  return new MessageWriter(null, 16).uint32(CANCEL_REQUEST_CODE).int32(processId).int32(secretKey).finish();
}

/** The single-byte answer to SSLRequest/GSSENCRequest: 'S' (go ahead with TLS) or 'N'. */
export const ENCRYPTION_ACCEPTED = Buffer.from('S');
export const ENCRYPTION_REFUSED = Buffer.from('N');
