// Patroni-compatible health endpoints, so load balancers and tools that speak
// Patroni's REST checks (HAProxy `option httpchk GET /primary`) work unchanged:
// 200 means "send traffic of this kind here", 503 means "don't".
import { type Request, type Response, Router } from 'express';
import type { ClusterReader, LocalHealth } from './types.ts';

export function healthRouter(reader: ClusterReader): Router {
  const router = Router();
  const primary = (_req: Request, res: Response) => answer(res, reader.health(), (h) => h.writable);
  const replica = (req: Request, res: Response) => {
    const maxLag = parseLag(req.query.lag);
    if (maxLag === 'invalid') {
      res.status(400).json({ error: 'lag must be a non-negative number of bytes, e.g. ?lag=1048576' });
      return;
    }
    answer(res, reader.health(), (h) => isServingReplica(h, maxLag));
  };
  router.get('/primary', primary);
  router.get('/read-write', primary);
  router.get('/replica', replica);
  router.get('/read-only', replica);
  router.get('/health', (_req, res) => {
    const health = reader.health();
    // A witness has no PostgreSQL: healthy means its sidecar answers.
    answer(res, health, (h) => h.kind !== 'member' || h.pgHealthy);
  });
  return router;
}

export function isServingReplica(health: LocalHealth, maxLagBytes: number | null): boolean {
  if (health.role !== 'backup' || !health.pgHealthy || !health.streaming) return false;
  if (maxLagBytes === null) return true;
  return health.lagBytes !== null && health.lagBytes <= maxLagBytes;
}

function answer(res: Response, health: LocalHealth, ok: (h: LocalHealth) => boolean): void {
  res.status(ok(health) ? 200 : 503).json(health);
}

function parseLag(value: unknown): number | null | 'invalid' {
  if (value === undefined) return null;
  if (typeof value !== 'string' || !/^\d+$/.test(value)) return 'invalid';
  return Number(value);
}
