// GET /cluster: the status JSON. With `?waitForTermAbove=N` it long-polls: it
// answers as soon as the term exceeds N, or at `timeoutMs` with the current state,
// so proxy-only sidecars follow failovers without a Raft vote of their own.
import { Router } from 'express';
import type { ClusterReader } from './types.ts';

export const MAX_LONG_POLL_MS = 30_000;
const DEFAULT_LONG_POLL_MS = 10_000;
/** Bounds the waiting requests (each holds a socket and a listener). */
export const MAX_WAITERS = 256;

export function clusterRouter(reader: ClusterReader): Router {
  const router = Router();
  let waiters = 0;
  router.get('/cluster', (req, res) => {
    const above = req.query.waitForTermAbove;
    if (above === undefined) {
      res.json(reader.status());
      return;
    }
    const term = typeof above === 'string' && /^\d+$/.test(above) ? Number(above) : Number.NaN;
    const timeoutText = req.query.timeoutMs;
    const timeoutMs =
      timeoutText === undefined
        ? DEFAULT_LONG_POLL_MS
        : typeof timeoutText === 'string' && /^\d+$/.test(timeoutText)
          ? Number(timeoutText)
          : Number.NaN;
    if (!Number.isSafeInteger(term) || !Number.isSafeInteger(timeoutMs) || timeoutMs > MAX_LONG_POLL_MS) {
      res.status(400).json({
        error: `waitForTermAbove must be a term and timeoutMs at most ${MAX_LONG_POLL_MS}, e.g. ?waitForTermAbove=3&timeoutMs=10000`,
      });
      return;
    }
    if (reader.topology.current().term > term) {
      res.json(reader.status());
      return;
    }
    if (waiters >= MAX_WAITERS) {
      res
        .status(503)
        .json({ error: `too many waiting requests (${MAX_WAITERS}); poll without waitForTermAbove` });
      return;
    }
    waiters++;
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      waiters--;
      clearTimeout(timer);
      unsubscribe();
      if (!res.headersSent && !res.destroyed) res.json(reader.status());
    };
    const timer = setTimeout(finish, timeoutMs);
    const unsubscribe = reader.topology.subscribe((view) => {
      if (view.term > term) finish();
    });
    res.on('close', finish);
  });
  return router;
}
