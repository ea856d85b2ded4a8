// A throwaway PostgreSQL of its own (initdb in a temp dir, a free port, run as the
// postgres user) for tests that kill or stop a server: the shared one on 5432 must
// never be touched. Everything it started is killed after the test, pass or fail.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import { freePort } from './ports.ts';
import { tempDir } from './tmp.ts';

const run = promisify(execFile);
const BIN = '/usr/lib/postgresql/15/bin';

export interface PrivatePostgres {
  host: string;
  port: number;
  dataDir: string;
  postmasterPid(): number;
  /** kill -9 of the postmaster alone: its backends see it die (and say so to their clients). */
  killPostmaster(): void;
}

async function asPostgres(command: string, args: string[]): Promise<void> {
  await run('runuser', ['-u', 'postgres', '--', `${BIN}/${command}`, ...args], { timeout: 120_000 });
}

export async function startPrivatePostgres(t: Pick<TestContext, 'after'>): Promise<PrivatePostgres> {
  const dir = tempDir(t, 'pgward-private-pg-');
  const dataDir = path.join(dir, 'data');
  const port = await freePort();
  await asPostgres('initdb', ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-N']);
  writeFileSync(
    path.join(dataDir, 'postgresql.auto.conf'),
    [
      `port = ${port}`,
      "listen_addresses = '127.0.0.1'",
      `unix_socket_directories = '${dir}'`,
      'fsync = off',
      "shared_buffers = '16MB'",
      '',
    ].join('\n'),
  );
  const postmasterPid = () =>
    Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  // Backends outlive a killed postmaster for a moment, reparented: remember them to kill them too.
  const orphans: number[] = [];
  const killPostmaster = () => {
    const pid = postmasterPid();
    orphans.push(...childrenOf(pid));
    kill([pid]);
  };
  t.after(() => {
    let pid: number | null = null;
    try {
      pid = postmasterPid();
    } catch {
      // never started
    }
    if (pid !== null) kill([pid, ...childrenOf(pid)]);
    kill(orphans);
  });
  await asPostgres('pg_ctl', ['-D', dataDir, '-w', '-l', path.join(dir, 'postgres.log'), 'start']);
  return { host: '127.0.0.1', port, dataDir, postmasterPid, killPostmaster };
}

function kill(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Processes whose parent is `pid` (a postmaster's backends and auxiliary processes). */
export function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirOfProc()) {
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (parent === pid) children.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return children;
}

function readdirOfProc(): string[] {
  return readdirSync('/proc').filter((entry) => /^\d+$/.test(entry));
}
