// Finds the PostgreSQL server binaries: the configured bindir, then PATH, then
// `pg_config --bindir`, then the highest /usr/lib/postgresql/<version>/bin.
import { execFileSync } from 'node:child_process';
import { accessSync, constants, readdirSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.ts';

export const REQUIRED_BINARIES = [
  'initdb',
  'pg_ctl',
  'pg_basebackup',
  'pg_rewind',
  'pg_controldata',
  'postgres',
] as const;

export type BinaryName = (typeof REQUIRED_BINARIES)[number];

export interface PgBinaries {
  bindir: string;
  path(name: BinaryName): string;
}

const DEBIAN_PACKAGE = 'postgresql-15';

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function hasAll(dir: string): boolean {
  return REQUIRED_BINARIES.every((name) => isExecutable(path.join(dir, name)));
}

function fromPath(): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir !== '' && hasAll(dir)) return dir;
  }
  return null;
}

function fromPgConfig(): string | null {
  try {
    const dir = execFileSync('pg_config', ['--bindir'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return hasAll(dir.trim()) ? dir.trim() : null;
  } catch {
    return null;
  }
}

function fromDebianLayout(root: string): string | null {
  let versions: string[];
  try {
    versions = readdirSync(root).filter((v) => /^\d+(\.\d+)?$/.test(v));
  } catch {
    return null;
  }
  versions.sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const dir = path.join(root, version, 'bin');
    if (hasAll(dir)) return dir;
  }
  return null;
}

/** `debianRoot` is where versioned bin dirs are searched (tests point it elsewhere). */
export function findBinaries(configuredBindir?: string, debianRoot = '/usr/lib/postgresql'): PgBinaries {
  let bindir: string | null;
  if (configuredBindir !== undefined) {
    if (!hasAll(configuredBindir)) {
      throw new UserError(
        `postgres.bindir ${configuredBindir} lacks one of ${REQUIRED_BINARIES.join(', ')}`,
        `point postgres.bindir at a PostgreSQL bin directory, or remove it to search PATH and /usr/lib/postgresql`,
      );
    }
    bindir = configuredBindir;
  } else {
    bindir = fromPath() ?? fromPgConfig() ?? fromDebianLayout(debianRoot);
  }
  if (bindir === null) {
    throw new UserError(
      `PostgreSQL server binaries (${REQUIRED_BINARIES.join(', ')}) not found on PATH, via pg_config or in /usr/lib/postgresql/*/bin`,
      `install them: apt-get install ${DEBIAN_PACKAGE} (or set postgres.bindir)`,
    );
  }
  const dir = bindir;
  return { bindir: dir, path: (name) => path.join(dir, name) };
}
