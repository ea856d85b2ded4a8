// The dashboard: one self-contained page (no external assets) served by every
// sidecar's API. It polls GET /cluster and /metrics twice a second and listens on
// GET /events (server-sent events) for the timeline: elections, promotions,
// fences, role changes and drills. The timeline is fed by the sidecar's own log
// lines that carry an `event` field, so no module needs to know the dashboard exists.
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import express, { type Request, type Response, Router } from 'express';
import winston from 'winston';
import { z } from 'zod';
import { requireBearer } from './routes/auth.ts';

export interface TimelineEvent {
  /** Milliseconds since the epoch. */
  atMs: number;
  /** election, promotion, fence, role, durability, switchover-intent, drill, ... */
  kind: string;
  message: string;
  term?: number;
  node?: string;
}

/** The last events, bounded, with live listeners. */
export class DashboardTimeline {
  private readonly events: TimelineEvent[] = [];
  private readonly listeners = new Set<(event: TimelineEvent) => void>();

  constructor(
    private readonly maxEvents = 500,
    private readonly nowMs: () => number = Date.now,
  ) {}

  push(event: Omit<TimelineEvent, 'atMs'> & { atMs?: number }): TimelineEvent {
    const full: TimelineEvent = { ...event, atMs: event.atMs ?? this.nowMs() };
    this.events.push(full);
    if (this.events.length > this.maxEvents) this.events.splice(0, this.events.length - this.maxEvents);
    for (const listener of this.listeners) listener(full);
    return full;
  }

  recent(): readonly TimelineEvent[] {
    return this.events;
  }

  subscribe(listener: (event: TimelineEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** A winston transport: add it to the sidecar's root logger and every `event` log line lands here. */
  transport(): winston.transport {
    const sink = new Writable({
      objectMode: true,
      write: (info: Record<string, unknown>, _encoding, done) => {
        const kind = info.event;
        if (typeof kind === 'string') {
          this.push({
            kind,
            message: String(info.message ?? kind),
            ...(typeof info.term === 'number' ? { term: info.term } : {}),
            ...(typeof info.node === 'string' ? { node: info.node } : {}),
          });
        }
        done();
      },
    });
    return new winston.transports.Stream({ stream: sink, level: 'info' });
  }
}

export interface DashboardOptions {
  timeline: DashboardTimeline;
  /** api.token: POST /events (drills reporting in) needs it. */
  token: string | undefined;
  /** Most SSE clients at once; more get 503. */
  maxStreams?: number;
}

const PAGE = readFileSync(new URL('./dashboard.html', import.meta.url), 'utf8');
const postedEvent = z
  .object({
    kind: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/),
    message: z.string().max(500),
    term: z.number().int().min(0).optional(),
    node: z.string().max(63).optional(),
  })
  .strict();

export function dashboardRouter(options: DashboardOptions): Router {
  const router = Router();
  const maxStreams = options.maxStreams ?? 64;
  let streams = 0;
  router.get('/', (_req, res) => res.redirect(302, '/dashboard'));
  router.get('/dashboard', (_req, res) => {
    res.set('content-type', 'text/html; charset=utf-8').set('cache-control', 'no-store').send(PAGE);
  });
  router.get('/events', (req: Request, res: Response) => {
    if (streams >= maxStreams) {
      res.status(503).json({ error: `too many dashboard streams (${maxStreams}); close a tab` });
      return;
    }
    streams += 1;
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      connection: 'keep-alive',
    });
    const send = (event: TimelineEvent) => res.write(`data: ${JSON.stringify(event)}\n\n`);
    for (const event of options.timeline.recent()) send(event);
    const unsubscribe = options.timeline.subscribe(send);
    // A comment every 15 s keeps proxies and browsers from closing an idle stream.
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    req.on('close', () => {
      streams -= 1;
      clearInterval(keepAlive);
      unsubscribe();
    });
  });
  router.post('/events', express.json({ limit: '4kb' }), requireBearer(options.token), (req, res) => {
    const body = postedEvent.safeParse(req.body);
    if (!body.success) {
      res
        .status(400)
        .json({ error: 'body must be {"kind": "drill", "message": "...", "term"?: N, "node"?: "..."}' });
      return;
    }
    res.status(201).json(options.timeline.push(body.data));
  });
  return router;
}

/**
 * Mounts the dashboard on an API router and feeds its timeline from `logger`'s
 * event lines (adds a transport to it). Returns the timeline for direct pushes.
 */
export function mountDashboard(
  router: Router,
  logger: winston.Logger,
  token: string | undefined,
): DashboardTimeline {
  const timeline = new DashboardTimeline();
  logger.add(timeline.transport());
  router.use(dashboardRouter({ timeline, token }));
  return timeline;
}
