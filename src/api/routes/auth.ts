// Bearer-token check for mutations. Without a configured token every mutation is
// refused: an admin API that anyone on the network can drive is not a default.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';

export function requireBearer(token: string | undefined) {
  const expected = token === undefined ? null : digest(token);
  return (req: Request, res: Response, next: NextFunction): void => {
    const header = req.get('authorization') ?? '';
    const match = /^Bearer (.+)$/.exec(header);
    if (expected === null) {
      res.status(401).json({ error: 'mutations are disabled: set api.token in the config to enable them' });
      return;
    }
    // Compare digests so the comparison takes the same time whatever the length.
    if (match?.[1] === undefined || !timingSafeEqual(digest(match[1]), expected)) {
      res
        .set('WWW-Authenticate', 'Bearer')
        .status(401)
        .json({ error: 'send Authorization: Bearer <api.token>' });
      return;
    }
    next();
  };
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
