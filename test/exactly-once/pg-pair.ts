// A primary and one streaming standby, started from scratch in a temp dir, for the
// exactly-once fault-injection tests. The test plays the failover itself (kill the
// primary, wait for the standby's replay to settle, record S, pg_promote) so the
// outcome resolution is tested on its own, whatever the Raft-led failover does.
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from '../support/ports.ts';
import { postgresTree } from '../support/processes.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';
import { waitFor } from '../support/wait.ts';

const run = promisify(execFile);
const BIN = '/usr/lib/postgresql/15/bin';

export interface PgNode {
  port: number;
  dataDir: string;
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<R[]>;
  postmasterPid(): number;
}

export interface PgPair {
  primary: PgNode;
  standby: PgNode;
}

async function asPostgres(command: string, args: string[]): Promise<string> {
  const { stdout } = await run('runuser', ['-u', 'postgres', '--', `${BIN}/${command}`, ...args], {
    timeout: 120_000,
  });
  return stdout;
}

function node(port: number, dataDir: string): PgNode {
  return {
    port,
    dataDir,
    async query(sql, params = []) {
      const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
      client.on('error', () => {});
      await client.connect();
      try {
        return (await client.query(sql, params)).rows;
      } finally {
        await client.end().catch(() => {});
      }
    },
    postmasterPid() {
      return Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    },
  };
}

/** Every process of the PostgreSQL whose postmaster is `pid`: the postmaster and its children. */
export const postgresProcesses = postgresTree;

/**
 * The whole primary dies at once: every process is stopped first, then killed, so
 * no backend can notice its postmaster's death and say so to the proxy (a lone
 * kill -9 of the postmaster makes idle backends send FATAL 57P01, which the proxy
 * currently passes on to the client: see the H7 report).
 */
export function killAll(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGSTOP');
    } catch {
      // already gone
    }
  }
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

export async function startPair(t: TestContext): Promise<PgPair> {
  // The directory is removed only after its servers are killed: their pids are read from it.
  const dir = makeTempDir('pgward-eo-pair-');
  const [primaryPort, standbyPort] = [await freePort(), await freePort()];
  const primaryDir = path.join(dir, 'primary');
  const standbyDir = path.join(dir, 'standby');
  await asPostgres('initdb', ['-D', primaryDir, '-U', 'postgres', '--auth=trust', '-N']);
  writeFileSync(
    path.join(primaryDir, 'postgresql.auto.conf'),
    [
      `port = ${primaryPort}`,
      "listen_addresses = '127.0.0.1'",
      `unix_socket_directories = '${dir}'`,
      'wal_level = replica',
      'max_wal_senders = 4',
      'hot_standby = on',
      'fsync = off',
      "shared_buffers = '16MB'",
      'synchronous_commit = on',
      '',
    ].join('\n'),
  );
  const pids: number[] = [];
  t.after(() => {
    for (const n of [primaryDir, standbyDir]) {
      try {
        killAll(postgresProcesses(node(0, n).postmasterPid()));
      } catch {
        // never started or already gone
      }
    }
    killAll(pids);
    removeTempDir(dir);
  });
  await asPostgres('pg_ctl', ['-D', primaryDir, '-w', '-l', path.join(dir, 'primary.log'), 'start']);
  await asPostgres('pg_basebackup', [
    '-h',
    '127.0.0.1',
    '-p',
    String(primaryPort),
    '-U',
    'postgres',
    '-D',
    standbyDir,
    '-R',
    '-X',
    'stream',
  ]);
  const autoConf = path.join(standbyDir, 'postgresql.auto.conf');
  const conf = readFileSync(autoConf, 'utf8')
    .replace(`port = ${primaryPort}`, `port = ${standbyPort}`)
    .replace(/primary_conninfo = '/, "primary_conninfo = 'application_name=s1 ");
  writeFileSync(autoConf, conf);
  await asPostgres('pg_ctl', ['-D', standbyDir, '-w', '-l', path.join(dir, 'standby.log'), 'start']);
  const pair = { primary: node(primaryPort, primaryDir), standby: node(standbyPort, standbyDir) };
  await waitFor(
    async () =>
      (await pair.standby.query("SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming'")).length > 0,
    { timeoutMs: 60_000, what: 'the standby streaming' },
  );
  return pair;
}

/**
 * The promoter's part (reference §5.0): wait until the standby's walreceiver has
 * stopped and replay caught up with what was received, record S, promote.
 */
export async function promote(standby: PgNode): Promise<bigint> {
  const lsn = await waitFor(
    async () => {
      const rows = await standby.query<{ receiving: boolean; receive: string | null; replay: string | null }>(
        `SELECT EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming') AS receiving,
                pg_last_wal_receive_lsn()::text AS receive, pg_last_wal_replay_lsn()::text AS replay`,
      );
      const row = rows[0]!;
      return !row.receiving && row.replay !== null && row.receive === row.replay ? row.replay : undefined;
    },
    { timeoutMs: 60_000, what: 'the standby to stop receiving and finish replay' },
  );
  await standby.query('SELECT pg_promote(true, 60)');
  const [high, low] = lsn.split('/');
  return (BigInt(`0x${high}`) << 32n) | BigInt(`0x${low}`);
}
