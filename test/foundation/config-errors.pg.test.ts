// Issue 3: config errors give one line naming the problem and the fix, a non-zero
// exit and no stack trace. Runs the real `pgward start` process.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import YAML from 'yaml';
import { runPgward } from '../support/cluster.ts';
import { freePorts } from '../support/ports.ts';
import { tempDir } from '../support/tmp.ts';

async function writeConfig(dir: string, patch: (config: Record<string, unknown>) => void): Promise<string> {
  const [pgPort, apiPort, raftPort] = await freePorts(3);
  const config: Record<string, unknown> = {
    cluster: { name: 'errors' },
    node: { name: 'node1', dataDir: path.join(dir, 'node1') },
    members: [{ name: 'node1', raftPort, apiPort, pgPort }],
    bootstrap: { primary: 'node1' },
    postgres: { port: pgPort },
    api: { port: apiPort },
  };
  patch(config);
  const file = path.join(dir, 'config.yaml');
  writeFileSync(file, YAML.stringify(config));
  return file;
}

async function startFails(file: string): Promise<string> {
  const result = await runPgward(['start', '--config', file], 60_000);
  assert.notEqual(result.code, 0, `pgward start should fail; stdout: ${result.stdout}`);
  const lines = result.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line expected, got:\n${result.stderr}`);
  const line = lines[0]!;
  assert.doesNotMatch(line, /\n\s+at /);
  assert.match(line, /; fix: /);
  return line;
}

test('unknown key: names the key, the file and the fix', async (t) => {
  const dir = tempDir(t);
  const file = await writeConfig(dir, (c) => {
    c.proxy = { prot: 7000 };
  });
  const line = await startFails(file);
  assert.match(line, /config error: proxy\.prot: unknown key/);
  assert.ok(line.includes(file));
  assert.match(line, /fix: remove proxy\.prot or correct its spelling/);
});

test('bad port: names the option and the valid range', async (t) => {
  const dir = tempDir(t);
  const file = await writeConfig(dir, (c) => {
    c.proxy = { port: 70000 };
  });
  const line = await startFails(file);
  assert.match(line, /config error: proxy\.port: /);
  assert.match(line, /fix: set proxy\.port to a TCP port number between 1 and 65535/);
});

test('bad port from the environment: names the variable', async (t) => {
  const dir = tempDir(t);
  const file = await writeConfig(dir, () => {});
  const previous = process.env.PGWARD_PROXY_PORT;
  process.env.PGWARD_PROXY_PORT = 'abc';
  t.after(() => {
    if (previous === undefined) delete process.env.PGWARD_PROXY_PORT;
    else process.env.PGWARD_PROXY_PORT = previous;
  });
  const line = await startFails(file);
  assert.match(line, /proxy\.port: .*from PGWARD_PROXY_PORT/);
});

test('data dir without permissions for PostgreSQL: names the directory and the fix', async (t) => {
  const dir = tempDir(t);
  const locked = path.join(dir, 'locked');
  mkdirSync(locked);
  // As root, PostgreSQL runs as postgres: a root-owned 0700 parent blocks it. Otherwise 0500 blocks us.
  chmodSync(locked, process.getuid?.() === 0 ? 0o700 : 0o500);
  const file = await writeConfig(dir, (c) => {
    c.node = { name: 'node1', dataDir: path.join(locked, 'node1') };
  });
  const line = await startFails(file);
  assert.match(line, /config error: node\.dataDir: .*locked is not (traversable|writable)/);
  assert.match(line, /fix: /);
});

test('data dir of another cluster: refused with the cluster names and the fix', async (t) => {
  const dir = tempDir(t);
  const pgdata = path.join(dir, 'node1', 'pgdata');
  mkdirSync(pgdata, { recursive: true });
  writeFileSync(path.join(pgdata, 'PG_VERSION'), '15\n');
  writeFileSync(path.join(pgdata, 'pgward.cluster'), '{"cluster":"someone-else"}\n');
  const file = await writeConfig(dir, () => {});
  const line = await startFails(file);
  assert.match(line, /belongs to pgward cluster 'someone-else', not 'errors'/);
  assert.match(line, /fix: point postgres\.dataDir at an empty or missing directory/);
});

test('a PostgreSQL data dir pgward did not create is refused', async (t) => {
  const dir = tempDir(t);
  const pgdata = path.join(dir, 'node1', 'pgdata');
  mkdirSync(pgdata, { recursive: true });
  writeFileSync(path.join(pgdata, 'PG_VERSION'), '15\n');
  const file = await writeConfig(dir, () => {});
  const line = await startFails(file);
  assert.match(line, /holds a PostgreSQL data directory that pgward did not create/);
});
