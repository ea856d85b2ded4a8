import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { configLeaves, envNameFor, loadConfig, postgresDataDir } from '../../src/config/load.ts';
import { UserError } from '../../src/errors.ts';
import { findBinaries } from '../../src/postgres/binaries.ts';
import { tempDir } from '../support/tmp.ts';

function write(dir: string, text: string): string {
  const file = path.join(dir, 'pgward.yaml');
  writeFileSync(file, text);
  return file;
}

const MINIMAL = 'node:\n  name: node1\n  dataDir: data/node1\n';

test('YAML with defaults; relative paths resolve against the file', (t) => {
  const dir = tempDir(t);
  const config = loadConfig({ file: write(dir, MINIMAL), env: {} });
  assert.equal(config.node.dataDir, path.join(dir, 'data/node1'));
  assert.equal(postgresDataDir(config), path.join(dir, 'data/node1/pgdata'));
  assert.equal(config.proxy.port, 6432);
  assert.equal(config.postgres.probeIntervalMs, 100);
  assert.equal(config.durability, 'block');
});

test('env overrides the file, flags override env', (t) => {
  const dir = tempDir(t);
  const file = write(dir, `${MINIMAL}proxy:\n  port: 7000\n`);
  const env = {
    PGWARD_PROXY_PORT: '7100',
    PGWARD_POSTGRES_PROBE_INTERVAL_MS: '50',
    PGWARD_PROXY_ENABLED: 'false',
  };
  const config = loadConfig({ file, env, overrides: { 'log.level': 'debug' } });
  assert.equal(config.proxy.port, 7100);
  assert.equal(config.proxy.enabled, false);
  assert.equal(config.postgres.probeIntervalMs, 50);
  assert.equal(config.log.level, 'debug');
  assert.equal(loadConfig({ file, env, overrides: { 'proxy.port': 7200 } }).proxy.port, 7200);
});

test('env names follow the option path', () => {
  assert.equal(envNameFor(['postgres', 'probeIntervalMs']), 'PGWARD_POSTGRES_PROBE_INTERVAL_MS');
  assert.equal(envNameFor(['exactlyOnce', 'mode']), 'PGWARD_EXACTLY_ONCE_MODE');
  const leaves = configLeaves().map((l) => l.path.join('.'));
  assert.ok(leaves.includes('proxy.port'));
  assert.ok(leaves.includes('postgres.probeFailures'));
});

test('one-line errors: unknown key, bad value, missing option, bad YAML, missing file', (t) => {
  const dir = tempDir(t);
  const cases: Array<[string, RegExp]> = [
    [
      `${MINIMAL}proxy:\n  prot: 1\n`,
      /^config error: proxy\.prot: unknown key \(in .*pgward\.yaml\); fix: remove proxy\.prot/,
    ],
    [
      `${MINIMAL}proxy:\n  port: 70000\n`,
      /^config error: proxy\.port: .*; fix: set proxy\.port to a TCP port number/,
    ],
    [
      'node:\n  name: node1\n',
      /^config error: node\.dataDir: required option is missing .*; fix: add node\.dataDir/,
    ],
    [`${MINIMAL}durability: maybe\n`, /^config error: durability: .*; fix: correct durability/],
    ['node: [1,\n', /^config error: .* is not valid YAML/],
  ];
  for (const [text, expected] of cases) {
    const file = write(dir, text);
    assert.throws(
      () => loadConfig({ file, env: {} }),
      (error: unknown) =>
        error instanceof UserError && expected.test(error.message) && !error.message.includes('\n'),
      text,
    );
  }
  assert.throws(
    () => loadConfig({ file: path.join(dir, 'nope.yaml'), env: {} }),
    /cannot read .*ENOENT.*fix: /,
  );
});

test('missing PostgreSQL binaries name the package to install', () => {
  assert.throws(() => findBinaries('/nonexistent/bin'), /postgres\.bindir .* lacks one of initdb/);
  assert.ok(findBinaries().bindir.length > 0);
  const previous = process.env.PATH;
  process.env.PATH = '/nonexistent';
  try {
    assert.throws(
      () => findBinaries(undefined, '/nonexistent'),
      /fix: install them: apt-get install postgresql-15/,
    );
  } finally {
    process.env.PATH = previous;
  }
});
