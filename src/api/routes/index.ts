// The failover half of the admin API as one router the sidecar's API server mounts.
import express, { Router } from 'express';
import type { Registry } from 'prom-client';
import { adminRouter } from './admin.ts';
import { clusterRouter } from './cluster.ts';
import { healthRouter } from './health.ts';
import { metricsRouter } from './metrics.ts';
import type { ClusterAdmin, ClusterReader } from './types.ts';

export interface ClusterApiOptions {
  reader: ClusterReader;
  admin: ClusterAdmin;
  /** api.token; mutations are refused without it. */
  token: string | undefined;
  registry: Registry;
}

const MAX_BODY = '16kb';

export function clusterApiRouter(options: ClusterApiOptions): Router {
  const router = Router();
  router.use(express.json({ limit: MAX_BODY }));
  router.use(healthRouter(options.reader));
  router.use(clusterRouter(options.reader));
  router.use(metricsRouter(options.registry));
  router.use(adminRouter(options.admin, options.token));
  return router;
}
