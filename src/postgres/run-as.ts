// PostgreSQL refuses to run as root. When pgward runs as root, every PostgreSQL
// command is spawned with the uid/gid of the `postgres` user and the directories
// it uses are handed to that user.
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.ts';

export interface RunAs {
  user: string;
  uid: number;
  gid: number;
  /** All groups of the user, for permission checks. */
  groups: number[];
}

export const POSTGRES_USER = 'postgres';

function idOf(flag: string, user: string): string {
  return execFileSync('id', [flag, user], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
}

/** The identity PostgreSQL commands run as: null when we are not root (they run as us). */
export function postgresRunAs(): RunAs | null {
  if (process.getuid?.() !== 0) return null;
  try {
    return {
      user: POSTGRES_USER,
      uid: Number(idOf('-u', POSTGRES_USER)),
      gid: Number(idOf('-g', POSTGRES_USER)),
      groups: idOf('-G', POSTGRES_USER).split(/\s+/).map(Number),
    };
  } catch {
    throw new UserError(
      `running as root, but there is no '${POSTGRES_USER}' user to run PostgreSQL as (it refuses to run as root)`,
      `install postgresql-15 (it creates the user) or run: useradd --system ${POSTGRES_USER}`,
    );
  }
}

/** Spawn options that make a child run as the PostgreSQL user. */
export function spawnIdentity(runAs: RunAs | null): { uid?: number; gid?: number } {
  return runAs === null ? {} : { uid: runAs.uid, gid: runAs.gid };
}

/** Creates `dir` (parents stay world-traversable) and gives `dir` itself to the PostgreSQL user. */
export function ensureOwnedDir(runAs: RunAs | null, dir: string, mode = 0o700): void {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  chmodSync(dir, mode);
  if (runAs !== null) chownSync(dir, runAs.uid, runAs.gid);
}

function permits(identity: { uid: number; groups: number[] }, file: string, bit: number): boolean {
  const st = statSync(file);
  if (identity.uid === 0) return true;
  if (st.uid === identity.uid) return (st.mode & (bit << 6)) !== 0;
  if (identity.groups.includes(st.gid)) return (st.mode & (bit << 3)) !== 0;
  return (st.mode & bit) !== 0;
}

/**
 * The first problem that would stop PostgreSQL from using `dir`, or null. Every existing
 * ancestor must be traversable by the user PostgreSQL runs as; when that is us (not
 * root), the deepest existing directory must also be writable. As root we create and
 * chown the rest ourselves.
 */
export function accessProblem(runAs: RunAs | null, dir: string): string | null {
  const identity =
    runAs === null
      ? { uid: process.getuid?.() ?? -1, groups: process.getgroups?.() ?? [], who: 'this user' }
      : { uid: runAs.uid, groups: [runAs.gid, ...runAs.groups], who: `the ${runAs.user} user` };
  const parts = path
    .resolve(dir)
    .split(path.sep)
    .filter((p) => p !== '');
  let deepest: string = path.sep;
  for (let i = 0; i <= parts.length; i++) {
    const current = path.sep + parts.slice(0, i).join(path.sep);
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(current);
    } catch {
      break;
    }
    if (!st.isDirectory()) return `${current} is not a directory`;
    if (!permits(identity, current, 1)) return `${current} is not traversable by ${identity.who}`;
    deepest = current;
  }
  if (runAs === null && !permits(identity, deepest, 2))
    return `${deepest} is not writable by ${identity.who}`;
  return null;
}
