import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ClusterView } from '../../src/cluster/view.ts';
import { parseConfig } from '../../src/config/load.ts';
import { silentLogger } from '../../src/log.ts';
import { ProxyOnlySidecar } from '../../src/sidecar/proxy-only.ts';
import { fakeMember } from '../support/fake-member.ts';
import { waitFor } from '../support/wait.ts';

const view = (term: number, primary: string | null): ClusterView => ({
  term,
  primary,
  promotedAtLsn: null,
  members: [
    {
      name: 'a',
      role: 'primary',
      postgres: { host: '127.0.0.1', port: 1 },
      lsn: 1n,
      lagBytes: 0,
      healthy: true,
    },
  ],
});

test('a proxy-only sidecar follows the members through their API and reports the view on its own API', async (t) => {
  const member = await fakeMember(view(1, 'a'));
  t.after(() => member.close());
  const port = Number(new URL(member.url).port);
  const config = parseConfig({
    node: { name: 'app', role: 'proxy', dataDir: '/tmp/unused' },
    members: [{ name: 'a', host: '127.0.0.1', raftPort: 1, apiPort: port, pgPort: 1 }],
    proxy: { port: 0, readOnlyPort: 0 },
    api: { port: 0 },
  });
  const sidecar = new ProxyOnlySidecar(config, silentLogger());
  t.after(() => sidecar.stop());
  await sidecar.start();
  const cluster = async () =>
    (await (await fetch(`${sidecar.api.url()}/cluster`)).json()) as ClusterView & { role: string };
  await waitFor(async () => (await cluster()).primary === 'a', { timeoutMs: 10_000, what: 'primary a' });
  member.set(view(2, 'b'));
  await waitFor(async () => (await cluster()).primary === 'b', { timeoutMs: 10_000, what: 'primary b' });
  assert.equal((await cluster()).role, 'proxy');
  assert.equal((await fetch(`${sidecar.api.url()}/health`)).status, 200);
  assert.equal(sidecar.topology.current().term, 2);
});
