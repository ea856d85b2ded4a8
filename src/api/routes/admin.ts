// Mutations: switchover, failover, member add/remove. Each needs the bearer token;
// a refused request changes nothing.
import { type Response, Router } from 'express';
import { z } from 'zod';
import { requireBearer } from './auth.ts';
import type { AdminResult, ClusterAdmin } from './types.ts';

const nodeName = z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, 'a member name');
const targetBody = z.object({ to: nodeName.optional() }).strict();
const port = z.number().int().min(1).max(65535);
const memberBody = z
  .object({
    name: nodeName,
    kind: z.enum(['member', 'witness']).default('member'),
    host: z.string().min(1).default('127.0.0.1'),
    raftPort: port,
    apiPort: port,
    pgPort: port.nullable().default(null),
    proxyPort: port.nullable().default(null),
  })
  .strict();

export function adminRouter(admin: ClusterAdmin, token: string | undefined): Router {
  const router = Router();
  const auth = requireBearer(token);
  router.post('/switchover', auth, async (req, res) => {
    const body = targetBody.safeParse(req.body ?? {});
    if (!body.success) return badRequest(res, 'body must be {"to": "<member>"} or empty');
    send(res, await admin.switchover(body.data.to === undefined ? {} : { to: body.data.to }));
  });
  router.post('/failover', auth, async (req, res) => {
    const body = targetBody.safeParse(req.body ?? {});
    if (!body.success) return badRequest(res, 'body must be {"to": "<member>"} or empty');
    send(res, await admin.failover(body.data.to === undefined ? {} : { to: body.data.to }));
  });
  router.post('/members', auth, async (req, res) => {
    const body = memberBody.safeParse(req.body ?? {});
    if (!body.success) {
      return badRequest(
        res,
        `invalid member: ${body.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      );
    }
    if (body.data.kind === 'member' && body.data.pgPort === null)
      return badRequest(res, 'a member needs pgPort');
    send(res, await admin.addMember(body.data));
  });
  router.delete('/members/:name', auth, async (req, res) => {
    const name = nodeName.safeParse(req.params.name);
    if (!name.success) return badRequest(res, 'not a member name');
    send(res, await admin.removeMember(name.data));
  });
  return router;
}

function badRequest(res: Response, error: string): void {
  res.status(400).json({ error });
}

function send(res: Response, result: AdminResult): void {
  if (result.ok) res.json({ ok: true, message: result.message, ...(result.detail ?? {}) });
  else res.status(result.status).json({ ok: false, error: result.message });
}
