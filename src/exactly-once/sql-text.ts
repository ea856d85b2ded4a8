// SQL text of the proxy's own statements. Owned queries between client batches go
// out in the simple protocol, which has no parameters, so values are inlined here
// in forms that do not depend on standard_conforming_strings: text through hex
// (`convert_from(decode(...))`), bytea through `decode(...)`.

/** The commit fence (reference §5.1): read just before anything that commits. */
export const FENCE_SQL = 'SELECT pg_current_xact_id_if_assigned()::text, pg_current_wal_insert_lsn()::text';

export function textLiteral(value: string): string {
  return `convert_from(decode('${Buffer.from(value, 'utf8').toString('hex')}', 'hex'), 'UTF8')`;
}

export function byteaLiteral(value: Uint8Array | null): string {
  return value === null ? 'NULL::bytea' : `decode('${Buffer.from(value).toString('hex')}', 'hex')`;
}

export function claimSql(scope: string, key: string, fingerprint: string): string {
  return `SELECT pgward.claim(${textLiteral(scope)}, ${textLiteral(key)}, '${hex(fingerprint)}')`;
}

export interface StoredOutcome {
  commandTag: string | null;
  /** The whole RowDescription message, when the statement returned rows. */
  rowDescription: Buffer | null;
  /** Concatenated whole DataRow messages. */
  dataRows: Buffer | null;
  truncated: boolean;
}

export function completeSql(scope: string, key: string, outcome: StoredOutcome): string {
  const tag = outcome.commandTag === null ? 'NULL' : textLiteral(outcome.commandTag);
  return (
    `SELECT pgward.complete(${textLiteral(scope)}, ${textLiteral(key)}, ${tag}, ` +
    `${byteaLiteral(outcome.rowDescription)}, ${byteaLiteral(outcome.dataRows)}, ${outcome.truncated})`
  );
}

/** Columns as text: bytea comes back in hex form (`\x...`). */
export function lookupSql(scope: string, key: string): string {
  return (
    'SELECT fingerprint, command_tag, row_description, data_rows, result_truncated::text ' +
    `FROM pgward.lookup(${textLiteral(scope)}, ${textLiteral(key)})`
  );
}

/**
 * The synchronous-commit rule and where the primary's WAL ends now, one row per
 * standby (a single row with NULL standby columns when none streams). flush_lsn
 * reads NULL without pg_read_all_stats: the wait then runs out (08007), never
 * acknowledges blindly.
 */
export const STANDBY_FLUSH_SQL =
  "SELECT s.names, s.insert_lsn::text, r.sync_state, r.flush_lsn::text FROM (SELECT current_setting('synchronous_standby_names') AS names, pg_current_wal_insert_lsn() AS insert_lsn) s LEFT JOIN pg_stat_replication r ON true";

export function xactStatusSql(xid: bigint): string {
  return `SELECT pg_xact_status('${xid}'::xid8)::text`;
}

export function terminateBackendSql(pid: number): string {
  assertPid(pid);
  return `SELECT pg_terminate_backend(${pid})`;
}

export function backendAliveSql(pid: number): string {
  assertPid(pid);
  return `SELECT count(*)::text FROM pg_stat_activity WHERE pid = ${pid}`;
}

/** Decodes a bytea column in hex output form. */
export function parseByteaHex(text: string | null | undefined): Buffer | null {
  if (text === null || text === undefined) return null;
  if (!text.startsWith('\\x')) throw new Error('bytea value is not in hex output format');
  return Buffer.from(text.slice(2), 'hex');
}

/** Parses `X/Y` LSN text into a bigint. */
export function parseLsn(text: string): bigint {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text);
  if (match === null) throw new Error(`not an LSN: ${text}`);
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}

function hex(fingerprint: string): string {
  if (!/^[0-9a-f]{64}$/.test(fingerprint)) throw new Error('fingerprint must be 64 lower-case hex digits');
  return fingerprint;
}

function assertPid(pid: number): void {
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`not a backend pid: ${pid}`);
}
