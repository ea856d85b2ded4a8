// Readable protocol bytes for tests, assembled independently of the codec's builders:
// `typed('Q', cstr('select 1'))` is a Query message.

export function cstr(value: string): Buffer {
  return Buffer.concat([Buffer.from(value, 'utf8'), Buffer.from([0])]);
}

export function i16(value: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeInt16BE(value);
  return b;
}

export function i32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(value);
  return b;
}

export function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value);
  return b;
}

export function byte(char: string): Buffer {
  return Buffer.from(char, 'latin1');
}

/** A typed message: type character, int32 length counting itself, then the parts. */
export function typed(type: string, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([byte(type), i32(body.length + 4), body]);
}

/** An untyped startup-phase packet: int32 length counting itself, then the parts. */
export function untyped(...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([i32(body.length + 4), body]);
}

/** One of every frontend message, hand-assembled. */
export const FRONTEND_SAMPLES: Record<string, Buffer> = {
  Query: typed('Q', cstr('select 1')),
  Parse: typed('P', cstr('s1'), cstr('select $1::int'), i16(1), u32(23)),
  Bind: typed(
    'B',
    cstr('p1'),
    cstr('s1'),
    i16(1),
    i16(0),
    i16(2),
    i32(1),
    byte('7'),
    i32(-1),
    i16(1),
    i16(1),
  ),
  Execute: typed('E', cstr('p1'), i32(10)),
  Describe: typed('D', byte('S'), cstr('s1')),
  Close: typed('C', byte('P'), cstr('p1')),
  Sync: typed('S'),
  Flush: typed('H'),
  Terminate: typed('X'),
  CopyData: typed('d', Buffer.from('1\tone\n')),
  CopyDone: typed('c'),
  CopyFail: typed('f', cstr('aborted by client')),
  FunctionCall: typed('F', u32(1598), i16(1), i16(0), i16(1), i32(2), Buffer.from('42'), i16(0)),
  PasswordMessage: typed('p', cstr('secret')),
  SASLInitialResponse: typed('p', cstr('SCRAM-SHA-256'), i32(8), Buffer.from('n,,n=,r=')),
  SASLResponse: typed('p', Buffer.from('c=biws,r=abc,p=xyz')),
};

/** One of every backend message, hand-assembled. */
export const BACKEND_SAMPLES: Record<string, Buffer> = {
  AuthenticationOk: typed('R', i32(0)),
  AuthenticationCleartextPassword: typed('R', i32(3)),
  AuthenticationMD5Password: typed('R', i32(5), Buffer.from([1, 2, 3, 4])),
  AuthenticationSASL: typed('R', i32(10), cstr('SCRAM-SHA-256'), cstr('')),
  AuthenticationSASLContinue: typed('R', i32(11), Buffer.from('r=abc,s=c2FsdA==,i=4096')),
  AuthenticationSASLFinal: typed('R', i32(12), Buffer.from('v=c2ln')),
  ParameterStatus: typed('S', cstr('server_version'), cstr('15.18')),
  BackendKeyData: typed('K', i32(4242), i32(-17)),
  ReadyForQuery: typed('Z', byte('I')),
  CommandComplete: typed('C', cstr('SELECT 1')),
  RowDescription: typed('T', i16(1), cstr('n'), u32(0), i16(0), u32(23), i16(4), i32(-1), i16(0)),
  DataRow: typed('D', i16(2), i32(1), byte('1'), i32(-1)),
  EmptyQueryResponse: typed('I'),
  ErrorResponse: typed(
    'E',
    byte('S'),
    cstr('ERROR'),
    byte('C'),
    cstr('42P01'),
    byte('M'),
    cstr('no such table'),
    cstr(''),
  ),
  NoticeResponse: typed(
    'N',
    byte('S'),
    cstr('NOTICE'),
    byte('C'),
    cstr('00000'),
    byte('M'),
    cstr('hi'),
    cstr(''),
  ),
  NegotiateProtocolVersion: typed('v', i32(0), i32(1), cstr('_pq_.x')),
  ParseComplete: typed('1'),
  BindComplete: typed('2'),
  CloseComplete: typed('3'),
  NoData: typed('n'),
  PortalSuspended: typed('s'),
  ParameterDescription: typed('t', i16(1), u32(23)),
  NotificationResponse: typed('A', i32(99), cstr('chan'), cstr('payload')),
  CopyInResponse: typed('G', Buffer.from([0]), i16(1), i16(0)),
  CopyOutResponse: typed('H', Buffer.from([0]), i16(1), i16(0)),
  CopyBothResponse: typed('W', Buffer.from([0]), i16(0)),
  FunctionCallResponse: typed('V', i32(2), Buffer.from('42')),
};

/** One of every startup-phase packet. */
export const STARTUP_SAMPLES: Record<string, Buffer> = {
  StartupMessage: untyped(i32(196608), cstr('user'), cstr('alice'), cstr('database'), cstr('app'), cstr('')),
  SSLRequest: untyped(i32(80877103)),
  GSSENCRequest: untyped(i32(80877104)),
  CancelRequest: untyped(i32(80877102), i32(1234), i32(5678)),
};
