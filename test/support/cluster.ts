// A real local pgward cluster for tests: N sidecar processes, each with its own
// PostgreSQL, started with `pgward up --detach --dir <tmp> --port 0` (all ports free
// ones from the OS) and stopped with `pgward down`, exactly as a user would.
//
//   const cluster = await startLocalCluster({ nodes: 3 });
//   t.after(() => cluster.stop());                 // always: down + remove the dir
//   await cluster.sql('node1', 'CREATE TABLE t (x int)');
//   const status = await cluster.status();         // the `pgward status --json` object
//   cluster.nodes[1].postmasterPid();              // live postmaster pid or null
//
// Options: `nodes` (default 3), `witness` (adds node `witness`: a vote, no PostgreSQL),
// `durability` ('block' | 'degrade'), `config` (deep-
// merged into every node's generated config.yaml before the first start, e.g.
// `{ postgres: { probeIntervalMs: 50 } }`), `timeoutMs` (bound on `up`, default 180 s).
// `netns: true` puts each node in its own network namespace (`pgward up --netns`, root
// only; check netnsUnavailable() first): node URLs then use the node's address, and
// `isolate(node)` / `heal(node)` cut it off from the other nodes and back.
// `down()` stops every process but keeps the data; `up()` starts it again with the
// same ports; `stop()` is `down()` + removing the dir and is safe to call twice; the
// nodes' logs are kept in test-artifacts/clusters/<cluster name>/.
// Node fields: name, proxyUrl, pgUrl, pgPort, proxyPort, readOnlyPort, apiUrl,
// apiPort, raftPort, configFile, dataDir (PostgreSQL's), nodeDir, logFile (sidecar),
// postmasterPid(), sidecarPid(). `sql(node, text, params)` runs one statement on that
// node's PostgreSQL directly (not through the proxy); `status()` is `pgward status
// --json` computed in-process; `client(node)` returns a
// connected pg.Client you end yourself. `pgward(...args)` runs the CLI on this dir.
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { ClusterStatus } from '../../src/api/status.ts';
import { createLocalCluster } from '../../src/local/create.ts';
import { type LocalCluster, nodeHost, readState } from '../../src/local/layout.ts';
import { healNode, isolateNode, removeNetwork } from '../../src/local/netns.ts';
import { isSidecarOf } from '../../src/local/processes.ts';
import { collectStatus } from '../../src/local/status.ts';
import { readPostmasterPid } from '../../src/postgres/instance.ts';
import { makeTempDir, removeTempDir } from './tmp.ts';

const PGWARD_BIN = fileURLToPath(new URL('../../bin/pgward.js', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface StartClusterOptions {
  nodes?: number;
  durability?: 'block' | 'degrade';
  /** Deep-merged into every node's config before the first start. */
  config?: Record<string, unknown>;
  /** Bound on `pgward up --detach` (default 180 s). */
  timeoutMs?: number;
  /** One network namespace per node (root only). */
  netns?: boolean;
  /** Adds a witness node named `witness` (Raft vote, no PostgreSQL, no proxy) after the `nodes` members. */
  witness?: boolean;
}

export interface TestNode {
  name: string;
  /** A witness has no PostgreSQL and no proxy (its ports are 0; sql() and client() refuse it). */
  kind: 'member' | 'witness';
  /** postgres:// URL of this node's proxy (read-write port). */
  proxyUrl: string;
  /** postgres:// URL of this node's PostgreSQL itself. */
  pgUrl: string;
  pgPort: number;
  proxyPort: number;
  readOnlyPort: number;
  apiUrl: string;
  /** The address every listener of the node binds to (127.0.0.1 unless netns). */
  host: string;
  apiPort: number;
  raftPort: number;
  configFile: string;
  nodeDir: string;
  dataDir: string;
  logFile: string;
  postmasterPid(): number | null;
  sidecarPid(): number | null;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface TestCluster {
  dir: string;
  name: string;
  apiToken: string;
  nodes: TestNode[];
  node(name: string): TestNode;
  status(): Promise<ClusterStatus>;
  sql<Row extends pg.QueryResultRow = pg.QueryResultRow>(
    node: TestNode | string,
    text: string,
    params?: unknown[],
  ): Promise<Row[]>;
  client(node: TestNode | string): Promise<pg.Client>;
  pgward(...args: string[]): Promise<CliResult>;
  /** netns clusters only: drop all traffic between `node` and the other nodes (clients still reach it). */
  isolate(node: TestNode | string): void;
  heal(node: TestNode | string): void;
  up(): Promise<void>;
  down(): Promise<void>;
  stop(): Promise<void>;
}

/** Runs the pgward CLI as a child process; never throws on a non-zero exit. */
export function runPgward(args: string[], timeoutMs = 240_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [PGWARD_BIN, ...args],
      { cwd: REPO_ROOT, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

function tailOf(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Logs outlive the temp dir: copied to test-artifacts/clusters/<name>/ (git-ignored) for post-mortems. */
function keepLogs(local: LocalCluster): void {
  const target = path.join(REPO_ROOT, 'test-artifacts', 'clusters', local.name);
  for (const node of local.nodes) {
    for (const file of ['sidecar.log', 'postgres.log']) {
      const from = path.join(node.dir, file);
      if (!existsSync(from)) continue;
      mkdirSync(target, { recursive: true });
      copyFileSync(from, path.join(target, `${node.name}-${file}`));
    }
  }
}

function toTestNode(cluster: LocalCluster, n: LocalCluster['nodes'][number]): TestNode {
  const host = nodeHost(n);
  return {
    name: n.name,
    kind: n.kind ?? 'member',
    proxyUrl: `postgres://postgres@${host}:${n.proxyPort}/postgres`,
    pgUrl: `postgres://postgres@${host}:${n.pgPort}/postgres`,
    pgPort: n.pgPort,
    proxyPort: n.proxyPort,
    readOnlyPort: n.readOnlyPort,
    apiUrl: `http://${host}:${n.apiPort}`,
    host,
    apiPort: n.apiPort,
    raftPort: n.raftPort,
    configFile: n.configFile,
    nodeDir: n.dir,
    dataDir: n.pgDataDir,
    logFile: path.join(n.dir, 'sidecar.log'),
    postmasterPid: () => readPostmasterPid(n.pgDataDir),
    sidecarPid: () => {
      const pid = readState(cluster.dir).sidecars[n.name];
      return pid !== undefined && isSidecarOf(pid, n) ? pid : null;
    },
  };
}

export async function startLocalCluster(options: StartClusterOptions = {}): Promise<TestCluster> {
  const dir = makeTempDir('pgward-cluster-');
  const overrides: Record<string, unknown> = { ...(options.config ?? {}) };
  if (options.durability !== undefined) overrides.durability = options.durability;
  let local: LocalCluster;
  try {
    local = await createLocalCluster({
      dir,
      nodes: options.nodes ?? 3,
      port: 0,
      overrides,
      ...(options.netns ? { netns: true } : {}),
      ...(options.witness ? { witness: true } : {}),
    });
  } catch (error) {
    removeTempDir(dir);
    throw error;
  }
  const nodes = local.nodes.map((n) => toTestNode(local, n));
  const byName = (node: TestNode | string) => {
    const name = typeof node === 'string' ? node : node.name;
    const found = nodes.find((n) => n.name === name);
    if (!found) throw new Error(`no node ${name} in the test cluster`);
    return found;
  };
  const clientConfig = (node: TestNode | string): pg.ClientConfig => {
    // pg reads port 0 as "default" and would reach the machine's own PostgreSQL on 5432.
    if (byName(node).kind === 'witness')
      throw new Error(`${byName(node).name} is a witness: it has no PostgreSQL`);
    return {
      host: byName(node).host,
      port: byName(node).pgPort,
      user: 'postgres',
      database: 'postgres',
      connectionTimeoutMillis: 10_000,
    };
  };
  let stopped = false;
  const cluster: TestCluster = {
    dir,
    name: local.name,
    apiToken: local.apiToken,
    nodes,
    node: byName,
    // In-process (the same code as `pgward status --json`): a CLI process per poll is slow on a busy machine.
    status: () => collectStatus(local),
    async sql(node, text, params = []) {
      const client = new pg.Client(clientConfig(node));
      client.on('error', () => {});
      try {
        await client.connect();
        return (await client.query(text, params)).rows;
      } finally {
        await client.end().catch(() => {});
      }
    },
    async client(node) {
      const client = new pg.Client(clientConfig(node));
      client.on('error', () => {});
      await client.connect();
      return client;
    },
    pgward: (...args) => runPgward(args),
    isolate(node) {
      if (local.network === undefined) throw new Error('isolate needs a netns cluster');
      isolateNode(local.network, byName(node).name);
    },
    heal(node) {
      if (local.network === undefined) throw new Error('heal needs a netns cluster');
      healNode(local.network, byName(node).name);
    },
    async up() {
      const result = await runPgward(
        ['up', '--detach', '--dir', dir, '--timeout', String(options.timeoutMs ?? 180_000)],
        (options.timeoutMs ?? 180_000) + 60_000,
      );
      if (result.code !== 0) {
        const logs = nodes.map((n) => `--- ${n.name} sidecar.log\n${tailOf(n.logFile)}`).join('\n');
        throw new Error(`pgward up failed (exit ${result.code}): ${result.stderr.trim()}\n${logs}`);
      }
    },
    async down() {
      const result = await runPgward(['down', '--dir', dir]);
      if (result.code !== 0)
        throw new Error(`pgward down failed (exit ${result.code}): ${result.stderr.trim()}`);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        await cluster.down();
      } finally {
        keepLogs(local);
        removeTempDir(dir);
        // `down` removes the network; this catches a down that failed half-way.
        if (local.network !== undefined) await removeNetwork(local.network);
      }
    },
  };
  try {
    await cluster.up();
  } catch (error) {
    await cluster.stop().catch(() => {});
    throw error;
  }
  return cluster;
}
