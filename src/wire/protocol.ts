// Names for every byte of PostgreSQL protocol 3.0.
// Plain `enum`s, not `const enum`: tsx/esbuild compile each file alone (isolatedModules), where
// const enums cannot be inlined across files anyway.
// @see https://www.postgresql.org/docs/15/protocol-message-formats.html

/** Type bytes of messages a client (frontend) sends after the startup phase. */
export enum FrontendMessage {
  Bind = 0x42, // 'B'
  Close = 0x43, // 'C'
  CopyData = 0x64, // 'd'
  CopyDone = 0x63, // 'c'
  CopyFail = 0x66, // 'f'
  Describe = 0x44, // 'D'
  Execute = 0x45, // 'E'
  Flush = 0x48, // 'H'
  FunctionCall = 0x46, // 'F'
  Parse = 0x50, // 'P'
  /** PasswordMessage, SASLInitialResponse, SASLResponse and GSSResponse share this byte. */
  Password = 0x70, // 'p'
  Query = 0x51, // 'Q'
  Sync = 0x53, // 'S'
  Terminate = 0x58, // 'X'
}

/** Type bytes of messages a server (backend) sends. */
export enum BackendMessage {
  Authentication = 0x52, // 'R'
  BackendKeyData = 0x4b, // 'K'
  BindComplete = 0x32, // '2'
  CloseComplete = 0x33, // '3'
  CommandComplete = 0x43, // 'C'
  CopyData = 0x64, // 'd'
  CopyDone = 0x63, // 'c'
  CopyInResponse = 0x47, // 'G'
  CopyOutResponse = 0x48, // 'H'
  CopyBothResponse = 0x57, // 'W'
  DataRow = 0x44, // 'D'
  EmptyQueryResponse = 0x49, // 'I'
  ErrorResponse = 0x45, // 'E'
  FunctionCallResponse = 0x56, // 'V'
  NegotiateProtocolVersion = 0x76, // 'v'
  NoData = 0x6e, // 'n'
  NoticeResponse = 0x4e, // 'N'
  NotificationResponse = 0x41, // 'A'
  ParameterDescription = 0x74, // 't'
  ParameterStatus = 0x53, // 'S'
  ParseComplete = 0x31, // '1'
  PortalSuspended = 0x73, // 's'
  ReadyForQuery = 0x5a, // 'Z'
  RowDescription = 0x54, // 'T'
}

/** The int32 that follows 'R' and says which Authentication* message it is. */
export enum AuthenticationCode {
  Ok = 0,
  KerberosV5 = 2,
  CleartextPassword = 3,
  MD5Password = 5,
  GSS = 7,
  GSSContinue = 8,
  SSPI = 9,
  SASL = 10,
  SASLContinue = 11,
  SASLFinal = 12,
}

/** ReadyForQuery's status byte. */
export enum TransactionStatus {
  Idle = 0x49, // 'I'
  InTransaction = 0x54, // 'T'
  Failed = 0x45, // 'E'
}

/** Describe/Close target byte. */
export enum TargetKind {
  Statement = 0x53, // 'S'
  Portal = 0x50, // 'P'
}

/** Startup-phase request codes: the int32 after the length of an untyped packet. */
export const PROTOCOL_VERSION_3_0 = 196608; // (3 << 16) | 0
export const SSL_REQUEST_CODE = 80877103; // (1234 << 16) | 5679
export const GSSENC_REQUEST_CODE = 80877104; // (1234 << 16) | 5680
export const CANCEL_REQUEST_CODE = 80877102; // (1234 << 16) | 5678

/** The newest minor version of protocol 3 we speak; clients asking for more get NegotiateProtocolVersion. */
export const SUPPORTED_PROTOCOL_MINOR = 0;

/** PostgreSQL's own cap on a startup packet (MAX_STARTUP_PACKET_LENGTH). */
export const MAX_STARTUP_PACKET_BYTES = 10000;

/** Every typed message: 1 type byte + int32 length (which counts itself, not the type byte). */
export const TYPED_HEADER_BYTES = 5;

/** PostgreSQL's cap on any one message (PQ_LARGE_MESSAGE_LIMIT, 1 GB - 1). */
export const MAX_PROTOCOL_MESSAGE_BYTES = 0x3fffffff;
