// What a client has set on "its" PostgreSQL session and must find again on whichever
// backend serves it next (transaction pooling, or a new primary after failover):
// session-level SET parameters and named prepared statements. Pure: no IO.

/** Startup parameters that are not settings (or cannot change after login). */
const NOT_SETTINGS = new Set(['user', 'database', 'replication', 'options', '_pq_']);

/** `SET [SESSION] name {TO|=} value` / `RESET name` / `RESET ALL` (one statement, no SET LOCAL). */
const SET_STATEMENT =
  /^\s*set\s+(?:session\s+)?(?!local\b|transaction\b|session\s+characteristics\b)([a-z_][a-z0-9_.]*)\s*(?:to|=)\s*(.+?)\s*;?\s*$/is;
const SET_TIME_ZONE = /^\s*set\s+(?:session\s+)?time\s+zone\s+(.+?)\s*;?\s*$/is;
const RESET_STATEMENT = /^\s*reset\s+([a-z_][a-z0-9_.]*)\s*;?\s*$/is;

export type SettingChange =
  | { kind: 'set'; name: string; valueSql: string }
  | { kind: 'reset'; name: string }
  | { kind: 'reset-all' };

/** Recognizes a single session-level SET/RESET in a simple Query; null for anything else. */
export function parseSettingChange(sql: string): SettingChange | null {
  // Several statements (or a huge one) are not a plain SET: left untracked.
  if (sql.length > 4096 || sql.trimEnd().replace(/;$/, '').includes(';')) return null;
  const timeZone = SET_TIME_ZONE.exec(sql);
  if (timeZone) return { kind: 'set', name: 'timezone', valueSql: timeZone[1]! };
  const set = SET_STATEMENT.exec(sql);
  if (set) return { kind: 'set', name: set[1]!.toLowerCase(), valueSql: set[2]! };
  const reset = RESET_STATEMENT.exec(sql);
  if (reset) {
    const name = reset[1]!.toLowerCase();
    return name === 'all' ? { kind: 'reset-all' } : { kind: 'reset', name };
  }
  return null;
}

export function quoteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Session settings: name → SQL text of the value (as `SET name = <text>` takes it). */
export class Settings {
  readonly values = new Map<string, string>();

  /** Startup parameters become settings, so a shared backend gets them by SET. */
  static fromStartup(parameters: ReadonlyMap<string, string>): Settings {
    const settings = new Settings();
    for (const [name, value] of parameters) {
      if (NOT_SETTINGS.has(name) || name.startsWith('_pq_.')) continue;
      settings.values.set(name.toLowerCase(), quoteLiteral(value));
    }
    return settings;
  }

  apply(change: SettingChange, startup: Settings): void {
    if (change.kind === 'set') this.values.set(change.name, change.valueSql);
    else if (change.kind === 'reset') {
      const initial = startup.values.get(change.name);
      if (initial === undefined) this.values.delete(change.name);
      else this.values.set(change.name, initial);
    } else {
      this.values.clear();
      for (const [name, value] of startup.values) this.values.set(name, value);
    }
  }

  /** SQL that turns a session with `current` settings into one with these. Empty when equal. */
  diffFrom(current: ReadonlyMap<string, string>): string {
    const statements: string[] = [];
    for (const [name, value] of this.values) {
      if (current.get(name) !== value) statements.push(`SET ${quoteIdentifier(name)} = ${value}`);
    }
    for (const name of current.keys()) {
      if (!this.values.has(name)) statements.push(`RESET ${quoteIdentifier(name)}`);
    }
    return statements.join('; ');
  }
}

/** A named prepared statement: its name and the exact Parse message that created it. */
export interface PreparedStatement {
  readonly name: string;
  /** The client's whole Parse message; replayed verbatim. */
  readonly parse: Buffer;
}

/** Prepared statement name of a Parse message body (the first cstring), or null when malformed. */
export function parseStatementName(raw: Buffer): string | null {
  const nul = raw.indexOf(0, 5);
  if (nul === -1) return null;
  return raw.toString('utf8', 5, nul);
}

/** Close target ('S' statement / 'P' portal) and name of a Close message, or null when malformed. */
export function closeTarget(raw: Buffer): { kind: number; name: string } | null {
  if (raw.length < 7) return null;
  const nul = raw.indexOf(0, 6);
  if (nul === -1) return null;
  return { kind: raw[5]!, name: raw.toString('utf8', 6, nul) };
}
