// Temporary directories for tests that run PostgreSQL: owned by the postgres user
// when we are root (PostgreSQL runs as that user) and removed afterwards.
import { chmodSync, chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { postgresRunAs } from '../../src/postgres/run-as.ts';

/** Creates a temp dir PostgreSQL can use; remove it with removeTempDir. */
export function makeTempDir(prefix = 'pgward-test-'): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  const runAs = postgresRunAs();
  if (runAs !== null) chownSync(dir, runAs.uid, runAs.gid);
  return dir;
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
}

/** A temp dir removed when the test (or suite) `t` ends, pass or fail. */
export function tempDir(t: Pick<TestContext, 'after'>, prefix?: string): string {
  const dir = makeTempDir(prefix);
  t.after(() => removeTempDir(dir));
  return dir;
}
