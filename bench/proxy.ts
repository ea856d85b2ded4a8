// `npm run bench:proxy`: pgward's proxy against direct PostgreSQL and PgBouncer.
//
// Starts a private PostgreSQL 15 (initdb on a free port, as the postgres user), loads pgbench
// data, starts PgBouncer (session pooling) and each pgward variant (session pooling, own
// process), then interleaves direct / pgward / PgBouncer for several rounds of pgbench
// `-S`, tpcb-like and `-S -C` with 16 clients. Also measures single-client latency and the
// proxy's RSS with 10k idle clients. Writes bench/results/proxy.json and prints a summary.
//
// Options (env): BENCH_SECONDS (10), BENCH_ROUNDS (3), BENCH_CLIENTS (16), BENCH_IDLE_CLIENTS
// (10000; 0 skips that part), BENCH_VARIANTS (pgward; comma-separated names from
// bench/proxy-variants.ts), BENCH_MODES (all: select-only,tpcb-like,select-only-connect,latency),
// BENCH_OUTPUT (bench/results/proxy.json; short exploratory runs write elsewhere),
// BENCH_PGBOUNCER (1; 0 leaves PgBouncer out, e.g. where it is not installed).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { createLogger } from '../src/log.ts';
import { findBinaries } from '../src/postgres/binaries.ts';
import { PostgresInstance } from '../src/postgres/instance.ts';
import { ensureOwnedDir, postgresRunAs, spawnIdentity } from '../src/postgres/run-as.ts';
import { freePort } from '../test/support/ports.ts';
import { waitFor } from '../test/support/wait.ts';
import { type BenchMode, variantNamed } from './proxy-variants.ts';

const run = promisify(execFile);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 16);
const THREADS = 2;
const IDLE_CLIENTS = Number(process.env.BENCH_IDLE_CLIENTS ?? 10000);
const VARIANTS = (process.env.BENCH_VARIANTS ?? 'pgward').split(',').filter((v) => v !== '');
const SELECTED_MODES = new Set(
  (process.env.BENCH_MODES ?? 'select-only,tpcb-like,select-only-connect,latency').split(','),
);
const OUTPUT = path.resolve(process.env.BENCH_OUTPUT ?? 'bench/results/proxy.json');
const WITH_PGBOUNCER = process.env.BENCH_PGBOUNCER !== '0';
const SCALE = 10;
const POOL_SIZE = 20;
const POSTGRES_SETTINGS = {
  max_connections: 400,
  shared_buffers: '256MB',
  // Commits do not wait for the WAL flush: the benchmark measures the proxy, not the disk. fsync stays on.
  synchronous_commit: 'off',
};
const MODES: Record<BenchMode, string[]> = {
  'select-only': ['-S'],
  'tpcb-like': [],
  'select-only-connect': ['-S', '-C'],
};

const logger = createLogger({ level: 'warn' });
const runAs = postgresRunAs();
const children = new Set<ChildProcess>();
const repoRoot = path.resolve(import.meta.dirname, '..');

interface Target {
  name: string;
  port: number;
  /** The process whose RSS is the target's (null for direct). */
  pid: number | null;
  extraArgs(mode: BenchMode): string[];
}

type Samples = Record<string, Record<string, number[]>>;

function record(samples: Samples, group: string, target: string, value: number): void {
  const byTarget = samples[group] ?? {};
  byTarget[target] = [...(byTarget[target] ?? []), value];
  samples[group] = byTarget;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
  return round2(kb / 1024);
}

async function pgbench(port: number, args: string[]): Promise<{ tps: number; latencyMs: number }> {
  const { stdout } = await run(
    'pgbench',
    [
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-U',
      'postgres',
      '-n',
      '-T',
      String(SECONDS),
      ...args,
      'postgres',
    ],
    { maxBuffer: 1 << 24, env: { ...process.env, PGCONNECT_TIMEOUT: '10' } },
  );
  const tps = Number(/tps = ([\d.]+)/.exec(stdout)?.[1]);
  const latencyMs = Number(/latency average = ([\d.]+) ms/.exec(stdout)?.[1]);
  const failed = Number(/number of failed transactions: (\d+)/.exec(stdout)?.[1] ?? 0);
  if (!(tps > 0) || failed > 0) throw new Error(`pgbench on port ${port} failed:\n${stdout}`);
  return { tps, latencyMs };
}

/** Spawns a long-running child we own; it is killed (by pid) at exit. */
function start(command: string, args: string[], options: Parameters<typeof spawn>[2]): ChildProcess {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'], ...options });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** The first JSON line a child prints on stdout. */
function firstJsonLine<T>(child: ChildProcess, what: string, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(
      () => reject(new Error(`${what} did not report within ${timeoutMs} ms`)),
      timeoutMs,
    );
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const newline = buffered.indexOf('\n');
      if (newline >= 0) {
        clearTimeout(timer);
        resolve(JSON.parse(buffered.slice(0, newline)) as T);
      }
    });
    child.once('exit', (code) => reject(new Error(`${what} exited with code ${code}`)));
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

async function startPostgres(dir: string): Promise<PostgresInstance> {
  const instance = new PostgresInstance({
    binaries: findBinaries(),
    runAs,
    dataDir: path.join(dir, 'data'),
    host: '127.0.0.1',
    port: await freePort(),
    superuser: 'postgres',
    replicationUser: 'postgres',
    clusterName: 'bench',
    nodeName: 'pg1',
    parameters: POSTGRES_SETTINGS,
    logFile: path.join(dir, 'postgres.log'),
    logger,
  });
  await instance.initdb();
  instance.writeConfig(null);
  await instance.start();
  return instance;
}

async function canConnect(port: number): Promise<boolean> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

async function startPgBouncer(dir: string, postgresPort: number, maxClients: number): Promise<Target> {
  const port = await freePort();
  const bouncerDir = path.join(dir, `pgbouncer-${port}`);
  ensureOwnedDir(runAs, bouncerDir, 0o755);
  const ini = path.join(bouncerDir, 'pgbouncer.ini');
  writeFileSync(path.join(bouncerDir, 'users.txt'), '"postgres" ""\n');
  writeFileSync(
    ini,
    [
      '[databases]',
      `* = host=127.0.0.1 port=${postgresPort}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      "unix_socket_dir = ''",
      'auth_type = trust',
      `auth_file = ${path.join(bouncerDir, 'users.txt')}`,
      'pool_mode = session',
      `default_pool_size = ${POOL_SIZE}`,
      `max_client_conn = ${maxClients}`,
      'server_reset_query = DISCARD ALL',
      'ignore_startup_parameters = extra_float_digits',
      `logfile = ${path.join(bouncerDir, 'pgbouncer.log')}`,
      '',
    ].join('\n'),
  );
  const child = start('pgbouncer', ['-q', ini], {
    ...spawnIdentity(runAs),
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await waitFor(() => canConnect(port), { timeoutMs: 30_000, what: 'PgBouncer to accept connections' });
  return { name: 'pgbouncer', port, pid: child.pid!, extraArgs: () => [] };
}

async function startPgward(
  variantName: string,
  postgresPort: number,
  config: Record<string, unknown> = {},
): Promise<Target> {
  const child = start(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(repoRoot, 'bench/proxy-launcher.ts'),
      JSON.stringify({ variant: variantName, postgresPort, config }),
    ],
    { cwd: repoRoot, env: { ...process.env, PGWARD_LOG_LEVEL: 'warn' } },
  );
  const { port } = await firstJsonLine<{ port: number }>(child, `proxy variant ${variantName}`, 60_000);
  const variant = variantNamed(variantName);
  return { name: variantName, port, pid: child.pid!, extraArgs: (mode) => variant.pgbenchArgs?.(mode) ?? [] };
}

async function idleClientsRss(target: Target): Promise<Record<string, number>> {
  const before = rssMb(target.pid!);
  const child = start(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(repoRoot, 'bench/idle-clients.ts'),
      String(target.port),
      String(IDLE_CLIENTS),
    ],
    {
      cwd: repoRoot,
    },
  );
  try {
    const { ready, failed } = await firstJsonLine<{ ready: number; failed: number }>(
      child,
      'idle clients',
      600_000,
    );
    const withIdle = rssMb(target.pid!);
    return {
      clients: ready,
      failedLogins: failed,
      rssMbBefore: before,
      rssMbWithIdleClients: withIdle,
      kbPerClient: round2(((withIdle - before) * 1024) / Math.max(ready, 1)),
    };
  } finally {
    await stopChild(child);
  }
}

async function main(): Promise<void> {
  const loadAtStart = os.loadavg().map(round2);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgward-bench-proxy-'));
  ensureOwnedDir(runAs, dir, 0o755);
  let postgres: PostgresInstance | null = null;
  try {
    postgres = await startPostgres(dir);
    const pgPort = postgres.options.port;
    console.log(`PostgreSQL on ${pgPort}; loading pgbench scale ${SCALE}...`);
    await run('pgbench', [
      '-h',
      '127.0.0.1',
      '-p',
      String(pgPort),
      '-U',
      'postgres',
      '-i',
      '-q',
      '-s',
      String(SCALE),
      'postgres',
    ]);
    for (const name of VARIANTS) await variantNamed(name).prepare?.({ host: '127.0.0.1', port: pgPort });

    const targets: Target[] = [{ name: 'direct', port: pgPort, pid: null, extraArgs: () => [] }];
    if (WITH_PGBOUNCER) targets.push(await startPgBouncer(dir, pgPort, 2000));
    for (const name of VARIANTS) targets.push(await startPgward(name, pgPort));

    const samples: Samples = {};
    const latencies: Samples = {};
    for (let round = 1; round <= ROUNDS; round++) {
      for (const [mode, args] of Object.entries(MODES) as [BenchMode, string[]][]) {
        if (!SELECTED_MODES.has(mode)) continue;
        for (const target of targets) {
          const { tps } = await pgbench(target.port, [
            '-c',
            String(CLIENTS),
            '-j',
            String(THREADS),
            ...args,
            ...target.extraArgs(mode),
          ]);
          record(samples, mode, target.name, tps);
          console.log(`round ${round} ${mode.padEnd(20)} ${target.name.padEnd(12)} ${tps.toFixed(0)} tps`);
        }
      }
      for (const target of SELECTED_MODES.has('latency') ? targets : []) {
        const { latencyMs } = await pgbench(target.port, [
          '-c',
          '1',
          '-j',
          '1',
          '-S',
          ...target.extraArgs('select-only'),
        ]);
        record(latencies, 'latency', target.name, latencyMs * 1000);
        console.log(
          `round ${round} latency (1 client -S) ${target.name.padEnd(12)} ${(latencyMs * 1000).toFixed(1)} us`,
        );
      }
    }

    const throughput: Record<string, unknown> = {};
    for (const [mode, byTarget] of Object.entries(samples)) {
      const medians = Object.fromEntries(Object.entries(byTarget).map(([t, v]) => [t, round2(median(v))]));
      const ratios: Record<string, number> = {};
      for (const name of VARIANTS) {
        ratios[`${name}/direct`] = round2(medians[name]! / medians.direct!);
        ratios[`${name}/pgbouncer`] = round2(medians[name]! / medians.pgbouncer!);
      }
      ratios['pgbouncer/direct'] = round2(medians.pgbouncer! / medians.direct!);
      throughput[mode] = { medianTps: medians, samplesTps: byTarget, ratios };
    }
    const latencyMedians = Object.fromEntries(
      Object.entries(latencies.latency ?? {}).map(([t, v]) => [t, round2(median(v))]),
    );
    const addedLatencyUs = Object.fromEntries(
      targets
        .filter((t) => t.name !== 'direct')
        .map((t) => [t.name, round2(latencyMedians[t.name]! - latencyMedians.direct!)]),
    );

    // Idle clients: transaction pooling, so 10k logged-in clients share a few backends.
    let idle: Awaited<ReturnType<typeof idleClientsRss>> | null = null;
    let idleBouncerRss: Awaited<ReturnType<typeof idleClientsRss>> | null = null;
    if (IDLE_CLIENTS > 0 && WITH_PGBOUNCER) {
      console.log(`opening ${IDLE_CLIENTS} idle clients...`);
      const idleProxy = await startPgward(VARIANTS[0] ?? 'pgward', pgPort, { poolMode: 'transaction' });
      idle = await idleClientsRss(idleProxy);
      console.log(`pgward with ${idle.clients} idle clients: ${idle.rssMbWithIdleClients} MB RSS`);
      const idleBouncer = await startPgBouncer(dir, pgPort, IDLE_CLIENTS + 100);
      idleBouncerRss = await idleClientsRss(idleBouncer);
    }

    const results = {
      generatedAt: new Date().toISOString(),
      command: 'npm run bench:proxy',
      // Other work on the machine skews every figure: compare ratios, and check this first.
      loadAverage: { atStart: loadAtStart, atEnd: os.loadavg().map(round2) },
      machine: {
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model,
        node: process.version,
        memoryMb: Math.round(os.totalmem() / 2 ** 20),
      },
      settings: {
        clients: CLIENTS,
        threads: THREADS,
        secondsPerRun: SECONDS,
        rounds: ROUNDS,
        scale: SCALE,
        interleaved: 'each round runs every mode against every target in turn',
        postgres: { ...POSTGRES_SETTINGS, fsync: 'on' },
        pgbouncer: {
          version: WITH_PGBOUNCER ? (await run('pgbouncer', ['--version'])).stdout.split('\n')[0] : null,
          poolMode: 'session',
          defaultPoolSize: POOL_SIZE,
        },
        pgward: {
          variants: Object.fromEntries(VARIANTS.map((v) => [v, variantNamed(v).description])),
          poolSize: POOL_SIZE,
        },
      },
      throughput,
      latency: {
        singleClientSelectOnlyUs: latencyMedians,
        samplesUs: latencies.latency,
        addedMedianUs: addedLatencyUs,
      },
      idleClients: { pgwardTransactionMode: idle, pgbouncer: idleBouncerRss },
    };
    mkdirSync(path.dirname(OUTPUT), { recursive: true });
    writeFileSync(OUTPUT, `${JSON.stringify(results, null, 2)}\n`);
    console.log(
      JSON.stringify(
        {
          throughput: Object.fromEntries(
            Object.entries(throughput).map(([m, v]) => [m, (v as { ratios: unknown }).ratios]),
          ),
          addedLatencyUs,
          idle,
        },
        null,
        2,
      ),
    );
    console.log(`wrote ${OUTPUT}`);
  } finally {
    for (const child of [...children]) await stopChild(child);
    await postgres?.stop('fast').catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
