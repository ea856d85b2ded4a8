// SQLSTATE codes pgward sends or branches on. Code branches on these, never on message text.
// @see https://www.postgresql.org/docs/15/errcodes-appendix.html

export const SqlState = {
  /** The client broke the protocol: bad length, unknown message, bytes out of order. */
  ProtocolViolation: '08P01',
  ConnectionFailure: '08006',
  ConnectionException: '08000',
  SqlClientUnableToEstablishSqlConnection: '08001',
  /** The outcome of an in-flight commit cannot be determined (DESIGN.md: never guess). */
  TransactionResolutionUnknown: '08007',
  FeatureNotSupported: '0A000',
  InvalidAuthorizationSpecification: '28000',
  InvalidPassword: '28P01',
  /** Definitely not committed: safe to retry. */
  SerializationFailure: '40001',
  InFailedSqlTransaction: '25P02',
  ReadOnlySqlTransaction: '25006',
  TooManyConnections: '53300',
  QueryCanceled: '57014',
  AdminShutdown: '57P01',
  CrashShutdown: '57P02',
  CannotConnectNow: '57P03',
  InternalError: 'XX000',
} as const;

export type SqlStateCode = (typeof SqlState)[keyof typeof SqlState];
