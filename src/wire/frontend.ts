// Frontend (client → server) messages after the startup phase: decoders for what the proxy acts
// on, builders for what it sends itself (replaying Parse/SET on a new backend, its own login).
// @see https://www.postgresql.org/docs/15/protocol-message-formats.html
import { BodyReader, MessageWriter } from './buffer.ts';
import { ProtocolError } from './errors.ts';
import type { MessageView } from './framer.ts';
import { FrontendMessage, TargetKind } from './protocol.ts';

export interface Parse {
  /** '' is the unnamed statement. */
  statement: string;
  sql: string;
  /** Parameter type OIDs; 0 leaves a type for the server to infer. */
  paramTypes: number[];
}

export interface Bind {
  /** '' is the unnamed portal. */
  portal: string;
  statement: string;
  paramFormats: number[];
  /** Views into the message (no copy); null is SQL NULL. */
  params: (Buffer | null)[];
  resultFormats: number[];
}

export interface Execute {
  portal: string;
  /** 0 = no limit. */
  maxRows: number;
}

/** Describe and Close: a statement or a portal by name. */
export interface TargetRef {
  target: TargetKind;
  name: string;
}

export interface FunctionCall {
  functionOid: number;
  argFormats: number[];
  args: (Buffer | null)[];
  resultFormat: number;
}

export interface SASLInitialResponse {
  mechanism: string;
  /** The client-first-message; null when the client sent none (length -1). */
  data: Buffer | null;
}

const FRONTEND_TYPES = new Set<number>([
  FrontendMessage.Bind,
  FrontendMessage.Close,
  FrontendMessage.CopyData,
  FrontendMessage.CopyDone,
  FrontendMessage.CopyFail,
  FrontendMessage.Describe,
  FrontendMessage.Execute,
  FrontendMessage.Flush,
  FrontendMessage.FunctionCall,
  FrontendMessage.Parse,
  FrontendMessage.Password,
  FrontendMessage.Query,
  FrontendMessage.Sync,
  FrontendMessage.Terminate,
]);

/** True for a type byte a client may send after startup; anything else is a protocol violation. */
export function isFrontendMessageType(type: number): boolean {
  return FRONTEND_TYPES.has(type);
}

function reader(view: MessageView, what: string): BodyReader {
  return new BodyReader(view.buffer, view.bodyStart, view.end, what);
}

export function decodeQuery(view: MessageView): string {
  const r = reader(view, 'Query');
  const sql = r.cstring();
  r.done();
  return sql;
}

export function decodeParse(view: MessageView): Parse {
  const r = reader(view, 'Parse');
  const statement = r.cstring();
  const sql = r.cstring();
  const count = r.count(4);
  const paramTypes: number[] = [];
  for (let i = 0; i < count; i++) paramTypes.push(r.uint32());
  r.done();
  return { statement, sql, paramTypes };
}

function int16List(r: BodyReader): number[] {
  const count = r.count(2);
  const values: number[] = [];
  for (let i = 0; i < count; i++) values.push(r.int16());
  return values;
}

function valueList(r: BodyReader): (Buffer | null)[] {
  const count = r.count(4);
  const values: (Buffer | null)[] = [];
  for (let i = 0; i < count; i++) values.push(r.nullableBytes());
  return values;
}

export function decodeBind(view: MessageView): Bind {
  const r = reader(view, 'Bind');
  const portal = r.cstring();
  const statement = r.cstring();
  const paramFormats = int16List(r);
  const params = valueList(r);
  const resultFormats = int16List(r);
  r.done();
  return { portal, statement, paramFormats, params, resultFormats };
}

/** Just the names, for routing and statement tracking without walking the parameters. */
export function decodeBindNames(view: MessageView): { portal: string; statement: string } {
  const r = reader(view, 'Bind');
  const portal = r.cstring();
  return { portal, statement: r.cstring() };
}

export function decodeExecute(view: MessageView): Execute {
  const r = reader(view, 'Execute');
  const portal = r.cstring();
  const maxRows = r.int32();
  r.done();
  return { portal, maxRows };
}

function decodeTarget(view: MessageView, what: string): TargetRef {
  const r = reader(view, what);
  const target = r.byte();
  if (target !== TargetKind.Statement && target !== TargetKind.Portal) {
    throw new ProtocolError(`invalid ${what} message subtype ${target}`);
  }
  const name = r.cstring();
  r.done();
  return { target, name };
}

export function decodeDescribe(view: MessageView): TargetRef {
  return decodeTarget(view, 'Describe');
}

export function decodeClose(view: MessageView): TargetRef {
  return decodeTarget(view, 'Close');
}

/** Sync, Flush, Terminate, CopyDone: a body must be empty. */
export function expectEmptyBody(view: MessageView, what: string): void {
  reader(view, what).done();
}

/** The payload of CopyData (a view, no copy). */
export function decodeCopyData(view: MessageView): Buffer {
  return view.buffer.subarray(view.bodyStart, view.end);
}

export function decodeCopyFail(view: MessageView): string {
  const r = reader(view, 'CopyFail');
  const message = r.cstring();
  r.done();
  return message;
}

export function decodeFunctionCall(view: MessageView): FunctionCall {
  const r = reader(view, 'FunctionCall');
  const functionOid = r.uint32();
  const argFormats = int16List(r);
  const args = valueList(r);
  const resultFormat = r.int16();
  r.done();
  return { functionOid, argFormats, args, resultFormat };
}

/** PasswordMessage: a cleartext password or "md5" + hex digest. */
export function decodePasswordMessage(view: MessageView): string {
  const r = reader(view, 'PasswordMessage');
  const password = r.cstring();
  r.done();
  return password;
}

export function decodeSASLInitialResponse(view: MessageView): SASLInitialResponse {
  const r = reader(view, 'SASLInitialResponse');
  const mechanism = r.cstring();
  const data = r.nullableBytes();
  r.done();
  return { mechanism, data };
}

/** SASLResponse: the whole body is SASL data (a view, no copy). */
export function decodeSASLResponse(view: MessageView): Buffer {
  return view.buffer.subarray(view.bodyStart, view.end);
}

export function buildQuery(sql: string): Buffer {
  return new MessageWriter(FrontendMessage.Query, sql.length + 8).cstring(sql).finish();
}

export function buildParse(parse: Parse): Buffer {
  const w = new MessageWriter(FrontendMessage.Parse, parse.sql.length + parse.statement.length + 16);
  w.cstring(parse.statement).cstring(parse.sql).int16(parse.paramTypes.length);
  for (const oid of parse.paramTypes) w.uint32(oid);
  return w.finish();
}

function writeValues(w: MessageWriter, formats: number[], values: (Uint8Array | null)[]): void {
  w.int16(formats.length);
  for (const format of formats) w.int16(format);
  w.int16(values.length);
  for (const value of values) w.nullableBytes(value);
}

export function buildBind(bind: Bind): Buffer {
  const w = new MessageWriter(FrontendMessage.Bind);
  w.cstring(bind.portal).cstring(bind.statement);
  writeValues(w, bind.paramFormats, bind.params);
  w.int16(bind.resultFormats.length);
  for (const format of bind.resultFormats) w.int16(format);
  return w.finish();
}

export function buildExecute(portal = '', maxRows = 0): Buffer {
  return new MessageWriter(FrontendMessage.Execute, 16).cstring(portal).int32(maxRows).finish();
}

export function buildDescribe(target: TargetKind, name: string): Buffer {
  return new MessageWriter(FrontendMessage.Describe, 16).byte(target).cstring(name).finish();
}

export function buildClose(target: TargetKind, name: string): Buffer {
  return new MessageWriter(FrontendMessage.Close, 16).byte(target).cstring(name).finish();
}

export function buildCopyData(data: Uint8Array): Buffer {
  return new MessageWriter(FrontendMessage.CopyData, data.length + 5).bytes(data).finish();
}

export function buildCopyFail(message: string): Buffer {
  return new MessageWriter(FrontendMessage.CopyFail).cstring(message).finish();
}

export function buildFunctionCall(call: FunctionCall): Buffer {
  const w = new MessageWriter(FrontendMessage.FunctionCall).uint32(call.functionOid);
  writeValues(w, call.argFormats, call.args);
  return w.int16(call.resultFormat).finish();
}

export function buildPasswordMessage(password: string): Buffer {
  return new MessageWriter(FrontendMessage.Password).cstring(password).finish();
}

export function buildSASLInitialResponse(mechanism: string, data: Uint8Array | null): Buffer {
  return new MessageWriter(FrontendMessage.Password).cstring(mechanism).nullableBytes(data).finish();
}

export function buildSASLResponse(data: Uint8Array): Buffer {
  return new MessageWriter(FrontendMessage.Password, data.length + 5).bytes(data).finish();
}

function emptyMessage(type: FrontendMessage): Buffer {
  return new MessageWriter(type, 5).finish();
}

/** Bodiless messages, built once; never mutate them. */
export const SYNC = emptyMessage(FrontendMessage.Sync);
export const FLUSH = emptyMessage(FrontendMessage.Flush);
export const TERMINATE = emptyMessage(FrontendMessage.Terminate);
export const COPY_DONE = emptyMessage(FrontendMessage.CopyDone);
