// Backend (server → client) messages: builders for what the proxy says itself, decoders for what
// it must read from PostgreSQL. Everything else is forwarded as bytes, undecoded.
// @see https://www.postgresql.org/docs/15/protocol-message-formats.html
import { BodyReader, MessageWriter } from './buffer.ts';
import { ProtocolError } from './errors.ts';
import type { MessageView } from './framer.ts';
import { AuthenticationCode, BackendMessage, TransactionStatus } from './protocol.ts';

/**
 * ErrorResponse/NoticeResponse fields, named after the protocol's field codes.
 * @see https://www.postgresql.org/docs/15/protocol-error-fields.html
 */
export interface ErrorFields {
  /** 'S': localized severity (ERROR, FATAL, PANIC, WARNING, NOTICE, DEBUG, INFO, LOG). */
  severity: string;
  /** 'V': severity never localized; the builder defaults it to `severity`. */
  severityNonLocalized?: string;
  /** 'C': SQLSTATE. */
  code: string;
  /** 'M' */
  message: string;
  detail?: string;
  hint?: string;
  position?: string;
  internalPosition?: string;
  internalQuery?: string;
  where?: string;
  schema?: string;
  table?: string;
  column?: string;
  dataType?: string;
  constraint?: string;
  file?: string;
  line?: string;
  routine?: string;
  /** Field codes this version does not name, kept verbatim (code character → value). */
  other?: Record<string, string>;
}

type NamedField = Exclude<keyof ErrorFields, 'other'>;

/** Wire order: severity, code and message first, as PostgreSQL sends them. */
const FIELD_CODES: ReadonlyArray<readonly [string, NamedField]> = [
  ['S', 'severity'],
  ['V', 'severityNonLocalized'],
  ['C', 'code'],
  ['M', 'message'],
  ['D', 'detail'],
  ['H', 'hint'],
  ['P', 'position'],
  ['p', 'internalPosition'],
  ['q', 'internalQuery'],
  ['W', 'where'],
  ['s', 'schema'],
  ['t', 'table'],
  ['c', 'column'],
  ['d', 'dataType'],
  ['n', 'constraint'],
  ['F', 'file'],
  ['L', 'line'],
  ['R', 'routine'],
];
const FIELD_BY_CODE = new Map<number, NamedField>(FIELD_CODES.map(([c, name]) => [c.charCodeAt(0), name]));

export interface FieldDescription {
  name: string;
  /** OID of the source table, 0 if none. */
  tableOid: number;
  /** Attribute number in that table, 0 if none. */
  columnAttr: number;
  typeOid: number;
  /** pg_type.typlen; negative for variable width. */
  typeSize: number;
  typeModifier: number;
  /** 0 text, 1 binary. */
  format: number;
}

export type AuthenticationRequest =
  | { code: AuthenticationCode.Ok }
  | { code: AuthenticationCode.CleartextPassword }
  | { code: AuthenticationCode.MD5Password; salt: Buffer }
  | { code: AuthenticationCode.SASL; mechanisms: string[] }
  | { code: AuthenticationCode.SASLContinue; data: Buffer }
  | { code: AuthenticationCode.SASLFinal; data: Buffer }
  /** Kerberos, GSS, SSPI: methods the proxy cannot answer. */
  | {
      code:
        | AuthenticationCode.KerberosV5
        | AuthenticationCode.GSS
        | AuthenticationCode.GSSContinue
        | AuthenticationCode.SSPI;
    };

function reader(view: MessageView, what: string): BodyReader {
  return new BodyReader(view.buffer, view.bodyStart, view.end, what);
}

function authentication(code: AuthenticationCode, size = 16): MessageWriter {
  return new MessageWriter(BackendMessage.Authentication, size).int32(code);
}

export function buildAuthenticationOk(): Buffer {
  return authentication(AuthenticationCode.Ok).finish();
}

export function buildAuthenticationCleartextPassword(): Buffer {
  return authentication(AuthenticationCode.CleartextPassword).finish();
}

export function buildAuthenticationMD5Password(salt: Uint8Array): Buffer {
  if (salt.length !== 4) throw new Error(`an MD5 salt is 4 bytes, got ${salt.length}`);
  return authentication(AuthenticationCode.MD5Password).bytes(salt).finish();
}

export function buildAuthenticationSASL(mechanisms: string[]): Buffer {
  const w = authentication(AuthenticationCode.SASL, 64);
  for (const mechanism of mechanisms) w.cstring(mechanism);
  return w.byte(0).finish();
}

export function buildAuthenticationSASLContinue(data: Uint8Array): Buffer {
  return authentication(AuthenticationCode.SASLContinue, data.length + 16)
    .bytes(data)
    .finish();
}

export function buildAuthenticationSASLFinal(data: Uint8Array): Buffer {
  return authentication(AuthenticationCode.SASLFinal, data.length + 16)
    .bytes(data)
    .finish();
}

export function buildParameterStatus(name: string, value: string): Buffer {
  return new MessageWriter(BackendMessage.ParameterStatus, name.length + value.length + 16)
    .cstring(name)
    .cstring(value)
    .finish();
}

export function buildBackendKeyData(processId: number, secretKey: number): Buffer {
  return new MessageWriter(BackendMessage.BackendKeyData, 16).int32(processId).int32(secretKey).finish();
}

export function buildReadyForQuery(status: TransactionStatus): Buffer {
  return new MessageWriter(BackendMessage.ReadyForQuery, 8).byte(status).finish();
}

function buildFields(type: BackendMessage, fields: ErrorFields): Buffer {
  const w = new MessageWriter(type, 128);
  for (const [code, name] of FIELD_CODES) {
    const value =
      name === 'severityNonLocalized' ? (fields.severityNonLocalized ?? fields.severity) : fields[name];
    if (value !== undefined) w.byte(code.charCodeAt(0)).cstring(value);
  }
  for (const [code, value] of Object.entries(fields.other ?? {})) {
    if (code.length !== 1 || FIELD_BY_CODE.has(code.charCodeAt(0))) {
      throw new Error(`error field code ${JSON.stringify(code)} must be one unnamed character`);
    }
    w.byte(code.charCodeAt(0)).cstring(value);
  }
  return w.byte(0).finish();
}

export function buildErrorResponse(fields: ErrorFields): Buffer {
  return buildFields(BackendMessage.ErrorResponse, fields);
}

export function buildNoticeResponse(fields: ErrorFields): Buffer {
  return buildFields(BackendMessage.NoticeResponse, fields);
}

/** The FATAL error the proxy sends right before closing a connection. */
export function buildFatalError(code: string, message: string, detail?: string, hint?: string): Buffer {
  const fields: ErrorFields = { severity: 'FATAL', code, message };
  if (detail !== undefined) fields.detail = detail;
  if (hint !== undefined) fields.hint = hint;
  return buildErrorResponse(fields);
}

export function buildNegotiateProtocolVersion(newestMinor: number, unsupportedOptions: string[]): Buffer {
  const w = new MessageWriter(BackendMessage.NegotiateProtocolVersion, 64)
    .int32(newestMinor)
    .int32(unsupportedOptions.length);
  for (const option of unsupportedOptions) w.cstring(option);
  return w.finish();
}

export function buildCommandComplete(tag: string): Buffer {
  return new MessageWriter(BackendMessage.CommandComplete, tag.length + 8).cstring(tag).finish();
}

export function buildRowDescription(fields: FieldDescription[]): Buffer {
  const w = new MessageWriter(BackendMessage.RowDescription, 32 * fields.length + 8).int16(fields.length);
  for (const f of fields) {
    w.cstring(f.name).uint32(f.tableOid).int16(f.columnAttr).uint32(f.typeOid);
    w.int16(f.typeSize).int32(f.typeModifier).int16(f.format);
  }
  return w.finish();
}

/** Strings are sent as UTF-8 text; null is SQL NULL. */
export function buildDataRow(values: (Uint8Array | string | null)[]): Buffer {
  const w = new MessageWriter(BackendMessage.DataRow).int16(values.length);
  for (const value of values) w.nullableBytes(typeof value === 'string' ? Buffer.from(value, 'utf8') : value);
  return w.finish();
}

/** A text column description for rows the proxy synthesizes (SHOW-style answers). */
export function textField(name: string): FieldDescription {
  const TEXT_OID = 25;
  return { name, tableOid: 0, columnAttr: 0, typeOid: TEXT_OID, typeSize: -1, typeModifier: -1, format: 0 };
}

function emptyMessage(type: BackendMessage): Buffer {
  return new MessageWriter(type, 5).finish();
}

/** Fixed messages, built once; never mutate them. */
export const AUTHENTICATION_OK = buildAuthenticationOk();
export const READY_FOR_QUERY_IDLE = buildReadyForQuery(TransactionStatus.Idle);
export const READY_FOR_QUERY_IN_TRANSACTION = buildReadyForQuery(TransactionStatus.InTransaction);
export const READY_FOR_QUERY_FAILED = buildReadyForQuery(TransactionStatus.Failed);
export const EMPTY_QUERY_RESPONSE = emptyMessage(BackendMessage.EmptyQueryResponse);
export const PARSE_COMPLETE = emptyMessage(BackendMessage.ParseComplete);
export const BIND_COMPLETE = emptyMessage(BackendMessage.BindComplete);
export const CLOSE_COMPLETE = emptyMessage(BackendMessage.CloseComplete);
export const NO_DATA = emptyMessage(BackendMessage.NoData);

export function decodeAuthentication(view: MessageView): AuthenticationRequest {
  const r = reader(view, 'Authentication');
  const code = r.int32();
  switch (code) {
    case AuthenticationCode.Ok:
    case AuthenticationCode.CleartextPassword:
      r.done();
      return { code };
    case AuthenticationCode.MD5Password: {
      const salt = r.bytes(4);
      r.done();
      return { code, salt };
    }
    case AuthenticationCode.SASL: {
      const mechanisms: string[] = [];
      for (let name = r.cstring(); name !== ''; name = r.cstring()) mechanisms.push(name);
      r.done();
      return { code, mechanisms };
    }
    case AuthenticationCode.SASLContinue:
    case AuthenticationCode.SASLFinal:
      return { code, data: r.rest() };
    case AuthenticationCode.KerberosV5:
    case AuthenticationCode.GSS:
    case AuthenticationCode.GSSContinue:
    case AuthenticationCode.SSPI:
      return { code };
    default:
      throw new ProtocolError(`unknown authentication request code ${code}`);
  }
}

export function decodeParameterStatus(view: MessageView): { name: string; value: string } {
  const r = reader(view, 'ParameterStatus');
  const name = r.cstring();
  const value = r.cstring();
  r.done();
  return { name, value };
}

export function decodeBackendKeyData(view: MessageView): { processId: number; secretKey: number } {
  const r = reader(view, 'BackendKeyData');
  const processId = r.int32();
  const secretKey = r.int32();
  r.done();
  return { processId, secretKey };
}

export function decodeReadyForQuery(view: MessageView): TransactionStatus {
  const r = reader(view, 'ReadyForQuery');
  const status = r.byte();
  r.done();
  if (
    status !== TransactionStatus.Idle &&
    status !== TransactionStatus.InTransaction &&
    status !== TransactionStatus.Failed
  ) {
    throw new ProtocolError(`invalid transaction status ${status} in ReadyForQuery`);
  }
  return status;
}

export function decodeCommandComplete(view: MessageView): string {
  const r = reader(view, 'CommandComplete');
  const tag = r.cstring();
  r.done();
  return tag;
}

function decodeFields(view: MessageView, what: string): ErrorFields {
  const r = reader(view, what);
  const named: Partial<Record<NamedField, string>> = {};
  let other: Record<string, string> | undefined;
  for (let code = r.byte(); code !== 0; code = r.byte()) {
    const value = r.cstring();
    const name = FIELD_BY_CODE.get(code);
    if (name !== undefined) {
      named[name] = value;
    } else {
      other ??= {};
      other[String.fromCharCode(code)] = value;
    }
  }
  r.done();
  const fields: ErrorFields = {
    ...named,
    severity: named.severity ?? '',
    code: named.code ?? '',
    message: named.message ?? '',
  };
  if (other !== undefined) fields.other = other;
  return fields;
}

/** All fields verbatim; a missing S/C/M comes back as ''. */
export function decodeErrorResponse(view: MessageView): ErrorFields {
  return decodeFields(view, 'ErrorResponse');
}

export function decodeNoticeResponse(view: MessageView): ErrorFields {
  return decodeFields(view, 'NoticeResponse');
}

export function decodeNegotiateProtocolVersion(view: MessageView): {
  newestMinor: number;
  unsupportedOptions: string[];
} {
  const r = reader(view, 'NegotiateProtocolVersion');
  const newestMinor = r.int32();
  const count = r.int32();
  if (count < 0 || count > r.remaining) throw new ProtocolError(`impossible option count ${count}`);
  const unsupportedOptions: string[] = [];
  for (let i = 0; i < count; i++) unsupportedOptions.push(r.cstring());
  r.done();
  return { newestMinor, unsupportedOptions };
}

export function decodeRowDescription(view: MessageView): FieldDescription[] {
  const r = reader(view, 'RowDescription');
  const count = r.count(19);
  const fields: FieldDescription[] = [];
  for (let i = 0; i < count; i++) {
    fields.push({
      name: r.cstring(),
      tableOid: r.uint32(),
      columnAttr: r.int16(),
      typeOid: r.uint32(),
      typeSize: r.int16(),
      typeModifier: r.int32(),
      format: r.int16(),
    });
  }
  r.done();
  return fields;
}

/** Column values as views into the message (no copy); null is SQL NULL. */
export function decodeDataRow(view: MessageView): (Buffer | null)[] {
  const r = reader(view, 'DataRow');
  const count = r.count(4);
  const values: (Buffer | null)[] = [];
  for (let i = 0; i < count; i++) values.push(r.nullableBytes());
  r.done();
  return values;
}

export function decodeNotificationResponse(view: MessageView): {
  processId: number;
  channel: string;
  payload: string;
} {
  const r = reader(view, 'NotificationResponse');
  const processId = r.int32();
  const channel = r.cstring();
  const payload = r.cstring();
  r.done();
  return { processId, channel, payload };
}
