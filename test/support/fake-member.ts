// A stand-in for a member's admin API: `GET /cluster` with the long-poll contract
// (`?waitForTermAbove=N` answers once the term exceeds N, or when the view is replaced).
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ClusterView } from '../../src/cluster/view.ts';
import { viewToJson } from '../../src/topology/wire.ts';

export async function fakeMember(initial: ClusterView) {
  let current = initial;
  const waiters = new Set<() => void>();
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(req.url ?? '');
    const url = new URL(req.url ?? '/', 'http://x');
    const above = url.searchParams.get('waitForTermAbove');
    const answer = () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ ...viewToJson(current), extra: 'ignored' }));
    };
    if (above === null || current.term > Number(above)) return answer();
    const wake = () => {
      waiters.delete(wake);
      answer();
    };
    waiters.add(wake);
    req.on('close', () => waiters.delete(wake));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    set(v: ClusterView) {
      current = v;
      for (const w of [...waiters]) w();
    },
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close').catch(() => undefined);
    },
  };
}
