// Test-only admin routes that arm and release the exactly-once failpoints of this
// sidecar's proxy, so a fault-injection test can pause a commit at a named point
// while it kills the primary and lets the real (Raft-led) failover run. Mounted only
// when the sidecar starts with PGWARD_TEST_FAILPOINTS=1, and every route also needs
// the bearer token: never reachable on a production sidecar.
//
//   PUT    /test/failpoints/:name  {"count": 2}   arm (the next `count` requests pause there)
//   GET    /test/failpoints                       {"<name>": {"count", "reached"}}
//   POST   /test/failpoints/:name/release         let the paused requests go on
//   DELETE /test/failpoints                       disarm all, release every paused request
import express, { type Response, Router } from 'express';
import { z } from 'zod';
import { FAILPOINT_NAMES, type FailpointControl } from '../../exactly-once/failpoints.ts';
import { requireBearer } from './auth.ts';

const nameSchema = z.enum(FAILPOINT_NAMES);
const armBody = z.object({ count: z.number().int().min(1).max(1000).default(1) }).strict();

export function failpointRouter(control: FailpointControl, token: string | undefined): Router {
  const router = Router();
  router.use('/test/failpoints', express.json({ limit: '1kb' }));
  const auth = requireBearer(token);
  router.put('/test/failpoints/:name', auth, (req, res) => {
    const name = nameSchema.safeParse(req.params.name);
    if (!name.success) return unknownName(res);
    const body = armBody.safeParse(req.body ?? {});
    if (!body.success) return void res.status(400).json({ error: 'body must be {"count": N} or empty' });
    control.arm(name.data, body.data.count);
    res.json({ ok: true, armed: name.data, count: body.data.count });
  });
  router.get('/test/failpoints', auth, (_req, res) => {
    res.json(control.state());
  });
  router.post('/test/failpoints/:name/release', auth, (req, res) => {
    const name = nameSchema.safeParse(req.params.name);
    if (!name.success) return unknownName(res);
    if (!control.release(name.data)) return void res.status(409).json({ error: `${name.data} is not armed` });
    res.json({ ok: true, released: name.data });
  });
  router.delete('/test/failpoints', auth, (_req, res) => {
    control.reset();
    res.json({ ok: true });
  });
  return router;
}

function unknownName(res: Response): void {
  res.status(404).json({ error: `no such failpoint; known: ${FAILPOINT_NAMES.join(', ')}` });
}
