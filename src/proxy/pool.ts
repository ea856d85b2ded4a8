// Backend connections per (server, database, role), bounded, reused LIFO, stamped with
// the fencing term: a connection of an older term is never handed out again.
import type { Endpoint } from '../cluster/view.ts';
import type { Logger } from '../log.ts';
import { BackendConnection, type BackendConnector } from './backend.ts';
import { endpointKey } from './routing.ts';

export interface PoolOptions {
  connector: BackendConnector;
  logger: Logger;
  /** Most connections per (server, database, role). */
  poolSize: number;
  /** An idle connection unused this long is closed. */
  idleTimeoutMs: number;
  /** Bound on connecting and logging in. */
  connectTimeoutMs: number;
  /** Bound on waiting for a connection when the pool is full. */
  waitTimeoutMs: number;
  password: string | undefined;
}

export interface PoolKey {
  endpoint: Endpoint;
  database: string;
  user: string;
}

/** Every connection of the pool was busy for the whole wait bound. */
export class PoolExhaustedError extends Error {
  constructor(key: string, waitMs: number) {
    super(
      `all backend connections for ${key} stayed busy for ${waitMs} ms; raise proxy.poolSize or retry later`,
    );
    this.name = 'PoolExhaustedError';
  }
}

interface Waiter {
  term: number;
  resolve(backend: BackendConnection | null): void;
}

interface Bucket {
  readonly key: PoolKey;
  readonly idle: BackendConnection[];
  /** Open connections (idle or busy) plus those being opened. */
  total: number;
  readonly waiters: Waiter[];
}

export class BackendPool {
  private readonly buckets = new Map<string, Bucket>();
  private readonly idleTimer: NodeJS.Timeout;
  private closedPool = false;

  constructor(private readonly options: PoolOptions) {
    this.idleTimer = setInterval(
      () => this.closeIdle(),
      Math.max(100, Math.min(options.idleTimeoutMs, 1000)),
    );
    this.idleTimer.unref();
  }

  /** Counts for metrics. */
  stats(): { idle: number; total: number; waiting: number } {
    let idle = 0;
    let total = 0;
    let waiting = 0;
    for (const bucket of this.buckets.values()) {
      idle += bucket.idle.length;
      total += bucket.total;
      waiting += bucket.waiters.length;
    }
    return { idle, total, waiting };
  }

  /** A logged-in connection of `term` for `key`: idle, new, or the next one released. */
  async acquire(key: PoolKey, term: number): Promise<BackendConnection> {
    if (this.closedPool) throw new Error('the backend pool is closed');
    const bucket = this.bucket(key);
    for (;;) {
      const idle = bucket.idle.pop();
      if (idle === undefined) break;
      if (idle.term === term && !idle.closed) return idle;
      idle.close('term-change');
    }
    if (bucket.total < this.options.poolSize) return this.open(bucket, term);
    const handed = await new Promise<BackendConnection | null>((resolve) => {
      const waiter: Waiter = { term, resolve };
      const timer = setTimeout(() => {
        const at = bucket.waiters.indexOf(waiter);
        if (at >= 0) bucket.waiters.splice(at, 1);
        resolve(null);
      }, this.options.waitTimeoutMs);
      waiter.resolve = (backend) => {
        clearTimeout(timer);
        resolve(backend);
      };
      bucket.waiters.push(waiter);
    });
    if (handed === null) throw new PoolExhaustedError(describeKey(key), this.options.waitTimeoutMs);
    if (handed.closed) return this.acquire(key, term);
    return handed;
  }

  /** Returns a connection that is idle at a boundary and clean for its next user; anything else is closed. */
  release(backend: BackendConnection): void {
    backend.detach();
    if (backend.closed) return;
    if (!backend.atBoundary || this.closedPool) {
      backend.close('connection-lost');
      return;
    }
    const bucket = this.bucket(backend);
    const waiter = bucket.waiters.shift();
    if (waiter !== undefined) {
      if (waiter.term === backend.term) {
        waiter.resolve(backend);
        return;
      }
      // Stale term: closing it frees a slot, which opens a fresh connection for this waiter.
      bucket.waiters.unshift(waiter);
      backend.close('term-change');
      return;
    }
    backend.idleSince = Date.now();
    bucket.idle.push(backend);
  }

  /** Closes idle connections of terms older than `term` (busy ones are fenced by their sessions). */
  fence(term: number): void {
    for (const bucket of this.buckets.values()) {
      const stale = bucket.idle.filter((b) => b.term < term);
      for (const backend of stale) backend.close('term-change');
    }
  }

  close(): void {
    this.closedPool = true;
    clearInterval(this.idleTimer);
    for (const bucket of this.buckets.values()) {
      for (const backend of bucket.idle.splice(0)) backend.close('connection-lost');
      for (const waiter of bucket.waiters.splice(0)) waiter.resolve(null);
    }
  }

  private async open(bucket: Bucket, term: number): Promise<BackendConnection> {
    bucket.total += 1;
    let backend: BackendConnection;
    try {
      backend = await BackendConnection.open({
        connector: this.options.connector,
        endpoint: bucket.key.endpoint,
        term,
        database: bucket.key.database,
        user: bucket.key.user,
        password: this.options.password,
        timeoutMs: this.options.connectTimeoutMs,
        logger: this.options.logger,
      });
    } catch (error) {
      bucket.total -= 1;
      this.serveWaiter(bucket);
      throw error;
    }
    backend.onClose(() => {
      bucket.total -= 1;
      const at = bucket.idle.indexOf(backend);
      if (at >= 0) bucket.idle.splice(at, 1);
      this.serveWaiter(bucket);
    });
    return backend;
  }

  /** A slot freed up: open a connection for the longest waiter. */
  private serveWaiter(bucket: Bucket): void {
    if (this.closedPool || bucket.total >= this.options.poolSize) return;
    const waiter = bucket.waiters.shift();
    if (waiter === undefined) return;
    this.open(bucket, waiter.term).then(waiter.resolve, () => waiter.resolve(null));
  }

  private closeIdle(): void {
    const cutoff = Date.now() - this.options.idleTimeoutMs;
    for (const bucket of this.buckets.values()) {
      const expired = bucket.idle.filter((b) => b.idleSince <= cutoff);
      for (const backend of expired) backend.close('connection-lost');
    }
  }

  private bucket(key: PoolKey): Bucket {
    const name = describeKey(key);
    let bucket = this.buckets.get(name);
    if (bucket === undefined) {
      bucket = {
        key: { endpoint: key.endpoint, database: key.database, user: key.user },
        idle: [],
        total: 0,
        waiters: [],
      };
      this.buckets.set(name, bucket);
    }
    return bucket;
  }
}

function describeKey(key: PoolKey): string {
  return `${key.user}@${endpointKey(key.endpoint)}/${key.database}`;
}
