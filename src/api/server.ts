// The sidecar's admin API: a small express server. The foundation serves
// `GET /cluster` and `GET /health`; other modules add routes to `router`, which is
// mounted first, so their handlers for the same paths take precedence.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { Router } from 'express';
import { deferred, type Service } from '../lifecycle.ts';
import type { Logger } from '../log.ts';

export interface ApiServerOptions {
  host: string;
  /** 0 picks a free port; see address(). */
  port: number;
  logger: Logger;
  /** Body of GET /cluster. */
  cluster: () => unknown;
  /** GET /health: 200 with the body when healthy, else 503. */
  health: () => { healthy: boolean; body: unknown };
}

export class ApiServer implements Service {
  readonly app = express();
  /** Extension point: routes added here are served before the foundation's. */
  readonly router = Router();
  private server: Server | null = null;
  private readonly ended = deferred<void>();
  private readonly options: ApiServerOptions;

  constructor(options: ApiServerOptions) {
    this.options = options;
    this.app.disable('x-powered-by');
    this.app.use(this.router);
    this.app.get('/cluster', (_req, res) => {
      res.json(options.cluster());
    });
    this.app.get('/health', (_req, res) => {
      const { healthy, body } = options.health();
      res.status(healthy ? 200 : 503).json(body);
    });
  }

  get done(): Promise<void> {
    return this.ended.promise;
  }

  /** The bound address (after start). */
  address(): { host: string; port: number } {
    const info = this.server?.address() as AddressInfo | null | undefined;
    if (!info) throw new Error('api server not started');
    return { host: this.options.host, port: info.port };
  }

  url(): string {
    const { host, port } = this.address();
    return `http://${host}:${port}`;
  }

  async start(): Promise<void> {
    if (this.server !== null) return;
    const server = this.app.listen(this.options.port, this.options.host);
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    server.on('error', (error) => this.options.logger.error('api server error', { error: error.message }));
    this.options.logger.info('api listening', { url: this.url() });
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (server === null) return;
    this.server = null;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    this.ended.resolve();
  }
}
