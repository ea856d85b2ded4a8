// Installs and migrates the request ledger (sql/NNN_*.sql) in one database. Run
// by the primary's sidecar after bootstrap and after every promotion (physical
// replication carries it to the backups), and lazily by the proxy when a keyed
// request meets a database without it. Safe to run concurrently and repeatedly:
// everything happens in one transaction under an advisory lock, and
// pgward.schema_version records which migrations are in.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** What the installer needs from a PostgreSQL client (`pg.Client` fits). */
export interface SqlClient {
  query(sql: string, params?: unknown[]): Promise<{ rows: Array<Record<string, unknown>> }>;
}

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

const SQL_DIR = fileURLToPath(new URL('../../sql/', import.meta.url));
const MIGRATION_FILE = /^(\d{3})_([a-z0-9_]+)\.sql$/;
/** Arbitrary constant: serializes installers racing on the same database. */
const INSTALL_LOCK_ID = 0x70677764;

export function loadMigrations(dir: string = SQL_DIR): Migration[] {
  const migrations = readdirSync(dir)
    .map((file) => ({ file, match: MIGRATION_FILE.exec(file) }))
    .filter((entry): entry is { file: string; match: RegExpExecArray } => entry.match !== null)
    .map(({ file, match }) => ({
      version: Number(match[1]),
      name: match[2]!,
      sql: readFileSync(`${dir}/${file}`, 'utf8'),
    }))
    .sort((a, b) => a.version - b.version);
  migrations.forEach((m, index) => {
    if (m.version !== index + 1) {
      throw new Error(`ledger migrations must be numbered 001, 002, ... without gaps; found ${m.version}`);
    }
  });
  return migrations;
}

export interface InstallResult {
  /** Versions applied by this call (empty when the ledger was already current). */
  applied: number[];
  version: number;
}

export async function installLedger(
  client: SqlClient,
  migrations: readonly Migration[] = loadMigrations(),
): Promise<InstallResult> {
  await client.query('BEGIN');
  try {
    await client.query(`SELECT pg_advisory_xact_lock(${INSTALL_LOCK_ID})`);
    await client.query('CREATE SCHEMA IF NOT EXISTS pgward');
    await client.query(
      `CREATE TABLE IF NOT EXISTS pgward.schema_version (
         version integer PRIMARY KEY,
         name text NOT NULL,
         applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const current = await ledgerVersion(client);
    const known = migrations.at(-1)?.version ?? 0;
    if (current > known) {
      throw new Error(
        `the ledger is at version ${current} but this pgward knows only up to ${known}; upgrade pgward on this node`,
      );
    }
    const applied: number[] = [];
    for (const migration of migrations) {
      if (migration.version <= current) continue;
      await client.query(migration.sql);
      // Inlined (no parameters) so the proxy can run the installer over its own simple-protocol queries.
      await client.query(
        `INSERT INTO pgward.schema_version (version, name) VALUES (${migration.version}, '${migration.name}')`,
      );
      applied.push(migration.version);
    }
    await client.query('COMMIT');
    return { applied, version: Math.max(current, known) };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  }
}

/** The installed ledger version: 0 when the schema_version table is empty. */
export async function ledgerVersion(client: SqlClient): Promise<number> {
  const result = await client.query(
    'SELECT coalesce(max(version), 0)::int AS version FROM pgward.schema_version',
  );
  return Number(result.rows[0]?.version ?? 0);
}
