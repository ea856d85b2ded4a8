// The compose files cannot run here (no Docker engine), so this test keeps them
// honest: every sidecar's config file must load through the real config loader
// with the environment compose gives it, and ports, volumes, health checks,
// member lists and commands must agree with that config.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import YAML from 'yaml';
import { configLeaves, loadConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TEST_ENV: Record<string, string> = {
  PGWARD_CLUSTER_SECRET: 'a-secret-of-at-least-16-chars',
  PGWARD_API_TOKEN: 'token',
  PGWARD_POSTGRES_PASSWORD: 'password',
};

interface Service {
  image?: string;
  build?: string;
  hostname?: string;
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
}

/** Compose's `${VAR:?message}` / `${VAR:-default}` interpolation, strict about unset variables. */
function interpolate(text: string, env: Record<string, string>): string {
  return text.replace(
    /\$\{([A-Z0-9_]+)(?::([?-])([^}]*))?\}/g,
    (_m, name: string, op?: string, arg?: string) => {
      const value = env[name];
      if (value !== undefined && value !== '') return value;
      if (op === '-') return arg ?? '';
      throw new Error(`compose needs ${name}: ${arg ?? 'unset'}`);
    },
  );
}

function readCompose(file: string): { services: Record<string, Service>; volumes: Record<string, unknown> } {
  const text = interpolate(readFileSync(path.join(ROOT, file), 'utf8'), TEST_ENV);
  return YAML.parse(text, { merge: true });
}

interface Sidecar {
  name: string;
  service: Service;
  config: Config;
}

function sidecars(file: string): {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
  sidecars: Sidecar[];
} {
  const compose = readCompose(file);
  const out: Sidecar[] = [];
  for (const [name, service] of Object.entries(compose.services)) {
    if (service.command?.[0] !== 'start') continue;
    const configFlag = service.command.indexOf('--config');
    assert.ok(configFlag > 0, `${name}: start needs --config`);
    const inContainer = service.command[configFlag + 1];
    const mount = (service.volumes ?? []).find((v) => v.split(':')[1] === inContainer);
    assert.ok(mount, `${name}: ${inContainer} is not mounted`);
    const hostFile = path.resolve(ROOT, mount.split(':')[0]!);
    const env = service.environment ?? {};
    const knownEnv = new Set(configLeaves().map((l) => l.envName));
    for (const key of Object.keys(env)) {
      if (key.startsWith('PGWARD_'))
        assert.ok(knownEnv.has(key), `${name}: ${key} is not a configuration option`);
    }
    out.push({ name, service, config: loadConfig({ file: hostFile, env }) });
  }
  return { ...compose, sidecars: out };
}

function checkLayout(file: string, expectMembers: number, expectWitnesses: number) {
  const { services, volumes, sidecars: nodes } = sidecars(file);
  const voters = nodes.filter((n) => n.config.node.role !== 'proxy');
  assert.equal(voters.filter((n) => n.config.node.role === 'member').length, expectMembers);
  assert.equal(voters.filter((n) => n.config.node.role === 'witness').length, expectWitnesses);
  const members = voters[0]!.config.members;
  for (const node of nodes) {
    const { config, service, name } = node;
    assert.deepEqual(config.members, members, `${name}: every sidecar lists the same members`);
    assert.equal(config.cluster.name, voters[0]!.config.cluster.name, `${name}: same cluster name`);
    assert.ok(config.cluster.secret, `${name}: the cluster secret reaches the config`);
    assert.ok(config.api.token, `${name}: the API token reaches the config`);

    const roleFlag = service.command!.indexOf('--role');
    if (roleFlag > 0)
      assert.equal(service.command![roleFlag + 1], config.node.role, `${name}: --role matches the config`);

    // The data dir lives on a named volume declared at the top level.
    const dataMount = (service.volumes ?? []).find((v) => config.node.dataDir.startsWith(v.split(':')[1]!));
    assert.ok(dataMount, `${name}: ${config.node.dataDir} is not on a volume`);
    assert.ok(dataMount.split(':')[0]! in volumes, `${name}: volume ${dataMount.split(':')[0]} is declared`);

    assert.equal(config.api.host, '0.0.0.0', `${name}: the API listens beyond the container`);
    assert.deepEqual(service.healthcheck?.test, [
      'CMD',
      'curl',
      '-fsS',
      `http://127.0.0.1:${config.api.port}/health`,
    ]);

    const published = (service.ports ?? []).map((p) => Number(p.split(':')[1]));
    const listening = [
      config.api.port,
      config.proxy.enabled ? config.proxy.port : null,
      config.proxy.readOnlyPort,
    ];
    for (const port of published)
      assert.ok(listening.includes(port), `${name}: publishes ${port}, which nothing listens on`);

    const redisUrl = new URL(config.redis.url!);
    assert.ok(redisUrl.hostname in services, `${name}: redis host ${redisUrl.hostname} is a service`);
    assert.equal(redisUrl.port, '6379');

    if (config.node.role === 'proxy') continue;
    const self = members.find((m) => m.name === config.node.name);
    assert.ok(self, `${name}: node ${config.node.name} is in members`);
    assert.equal(self.host, service.hostname ?? name, `${name}: members[].host is its compose hostname`);
    assert.equal(self.host in services, true, `${name}: members[].host resolves to a service`);
    assert.equal(self.raftPort, config.raft.port);
    assert.equal(self.apiPort, config.api.port);
    assert.equal(config.raft.host, '0.0.0.0');
    if (config.node.role === 'witness') {
      assert.equal(self.kind, 'witness');
      assert.equal(self.pgPort, undefined, `${name}: a witness has no PostgreSQL`);
      assert.equal(self.proxyPort, undefined, `${name}: a witness has no proxy`);
      assert.equal(config.proxy.enabled, false, `${name}: a witness runs no proxy`);
      continue;
    }
    assert.equal(self.kind, 'member');
    assert.equal(self.pgPort, config.postgres?.port);
    assert.equal(self.proxyPort, config.proxy.port);
    assert.equal(self.readOnlyPort, config.proxy.readOnlyPort);
    assert.equal(config.proxy.host, '0.0.0.0', `${name}: the proxy listens beyond the container`);
    assert.equal(
      config.postgres?.host,
      '0.0.0.0',
      `${name}: backups stream from this PostgreSQL over the network`,
    );
    assert.equal(
      config.bootstrap?.primary,
      voters.find((v) => v.config.node.role === 'member')!.config.bootstrap?.primary,
    );
  }

  const demo = services.demo!;
  const hosts = demo.environment!.PGHOST!.split(',');
  const ports = demo.environment!.PGPORT!.split(',').map(Number);
  hosts.forEach((host, i) => {
    const target = nodes.find((n) => (n.service.hostname ?? n.name) === host);
    assert.ok(target, `demo: ${host} is a pgward service`);
    assert.equal(ports[i], target.config.proxy.port, `demo: connects to ${host}'s proxy port`);
  });
  assert.ok(demo.volumes?.some((v) => v.startsWith('./deploy/demo-client.sh:')));
}

test('docker-compose.yml: three members, a proxy-only sidecar, Redis and a demo client agree with the config schema', () => {
  checkLayout('docker-compose.yml', 3, 0);
  const { sidecars: nodes } = sidecars('docker-compose.yml');
  assert.deepEqual(nodes.map((n) => n.config.node.role).sort(), ['member', 'member', 'member', 'proxy']);
});

test('docker-compose.witness.yml: two members and a witness agree with the config schema', () => {
  checkLayout('docker-compose.witness.yml', 2, 1);
});

test('compose refuses to start without the secrets instead of running with defaults', () => {
  const text = readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8');
  assert.throws(() => interpolate(text, {}), /PGWARD_CLUSTER_SECRET/);
});

test('the Dockerfile builds Node 20 with Debian PostgreSQL 15 and exposes the ports the config uses', () => {
  const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
  assert.match(dockerfile, /^FROM node:20-bookworm/m);
  assert.match(dockerfile, /postgresql-15/);
  assert.match(dockerfile, /^USER postgres$/m);
  assert.match(dockerfile, /^ENTRYPOINT \["pgward"\]$/m);
  const exposed = /^EXPOSE (.+)$/m.exec(dockerfile)![1]!.split(/\s+/).map(Number);
  const { sidecars: nodes } = sidecars('docker-compose.yml');
  for (const { config } of nodes) {
    for (const port of [config.api.port, config.proxy.port, config.proxy.readOnlyPort, config.raft.port]) {
      assert.ok(exposed.includes(port), `Dockerfile exposes ${port}`);
    }
  }
  assert.match(dockerfile, /curl -fsS http:\/\/127\.0\.0\.1:8008\/health/);
  for (const dir of ['bin', 'src', 'sql']) assert.match(dockerfile, new RegExp(`^COPY ${dir} `, 'm'));
});
