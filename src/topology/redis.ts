// The optional Redis topology channel. Members publish every view change on a
// pub/sub channel (instant) and append it to a capped stream (so a follower that
// (re)connects reads the latest view at once). Redis is only an accelerator: every
// call goes through a circuit breaker, failures are logged and dropped, and a
// follower also long-polls the members' API, so Redis down changes nothing but speed.

import { Redis } from 'ioredis';
import CircuitBreaker from 'opossum';
import type { ClusterView, TopologySource } from '../cluster/view.ts';
import { deferred, type Service } from '../lifecycle.ts';
import type { Logger } from '../log.ts';
import type { FollowerTopology } from './follower.ts';
import { decodeTopologyMessage, encodeTopologyMessage } from './wire.ts';

export interface RedisTopologyOptions {
  url: string;
  channel: string;
  /** Defaults to `<channel>:stream`. */
  stream?: string;
  /** Approximate cap on stream entries (XADD MAXLEN ~). */
  streamMaxLen?: number;
  cluster: string;
  node: string;
  /** Per-command timeout; a slower Redis counts as a failure for the breaker. */
  commandTimeoutMs?: number;
  /** Re-publish the current view this often, so a follower that missed a message catches up. */
  republishIntervalMs?: number;
  /** The breaker stays open this long before it lets one call try again. */
  breakerResetMs?: number;
}

export function streamName(options: Pick<RedisTopologyOptions, 'channel' | 'stream'>): string {
  return options.stream ?? `${options.channel}:stream`;
}

function connect(options: RedisTopologyOptions, logger: Logger): Redis {
  const client = new Redis(options.url, {
    lazyConnect: true,
    // Fail fast while disconnected instead of queueing: a stale view must not be sent later.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: options.commandTimeoutMs ?? 1000,
    // Keep reconnecting forever, backing off to at most 1 s between tries.
    retryStrategy: (times) => Math.min(50 * times, 1000),
  });
  // ioredis emits 'error' on every failed reconnect; without a listener Node would crash.
  client.on('error', (error: Error) => logger.debug('redis: connection error', { error: error.message }));
  return client;
}

function breaker<A extends unknown[], R>(
  name: string,
  action: (...args: A) => Promise<R>,
  options: RedisTopologyOptions,
  logger: Logger,
): CircuitBreaker<A, R> {
  const b = new CircuitBreaker(action, {
    timeout: (options.commandTimeoutMs ?? 1000) + 500,
    errorThresholdPercentage: 50,
    volumeThreshold: 2,
    resetTimeout: options.breakerResetMs ?? 2000,
    name,
  });
  b.on('open', () => logger.warn('redis: circuit open, topology channel paused', { breaker: name }));
  b.on('close', () => logger.info('redis: circuit closed, topology channel back', { breaker: name }));
  return b;
}

/** Runs on members: publishes the local view (from Raft) on every change. */
export class RedisTopologyPublisher implements Service {
  private readonly client: Redis;
  private readonly publishBreaker: CircuitBreaker<[string, boolean], void>;
  private readonly finished = deferred<void>();
  private unsubscribe: (() => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  readonly done = this.finished.promise;

  constructor(
    private readonly source: TopologySource,
    private readonly options: RedisTopologyOptions,
    private readonly logger: Logger,
  ) {
    this.client = connect(options, logger);
    this.publishBreaker = breaker(
      'redis-publish',
      (text: string, append: boolean) => this.send(text, append),
      options,
      logger,
    );
    // A rejected publish is already logged by the breaker events; a failure must never surface as unhandled.
    this.publishBreaker.fallback(() => undefined);
    // On every (re)connect, put the current view in the stream so late followers find it.
    this.client.on('ready', () => this.publish(this.source.current(), true));
  }

  async start(): Promise<void> {
    this.client.connect().catch((error: Error) => {
      this.logger.warn('redis: not reachable yet, will keep trying', { error: error.message });
    });
    this.unsubscribe = this.source.subscribe((view) => this.publish(view, true));
    this.timer = setInterval(
      () => this.publish(this.source.current(), false),
      this.options.republishIntervalMs ?? 1000,
    );
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = null;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.publishBreaker.shutdown();
    this.client.disconnect();
    this.finished.resolve();
  }

  /** Publishes one view; never throws (Redis is optional). */
  publish(view: ClusterView, appendToStream: boolean): void {
    const text = encodeTopologyMessage({ cluster: this.options.cluster, from: this.options.node, view });
    this.publishBreaker.fire(text, appendToStream).catch(() => undefined);
  }

  private async send(text: string, appendToStream: boolean): Promise<void> {
    if (appendToStream) {
      await this.client.xadd(
        streamName(this.options),
        'MAXLEN',
        '~',
        this.options.streamMaxLen ?? 1000,
        '*',
        'view',
        text,
      );
    }
    await this.client.publish(this.options.channel, text);
  }
}

/** Runs on proxy-only sidecars: feeds views from the channel (and the stream's latest entry) into the follower. */
export class RedisTopologySubscriber implements Service {
  private readonly subscriber: Redis;
  private readonly reader: Redis;
  private readonly readLatestBreaker: CircuitBreaker<[], void>;
  private readonly finished = deferred<void>();
  private stopped = false;
  readonly done = this.finished.promise;

  constructor(
    private readonly follower: FollowerTopology,
    private readonly options: RedisTopologyOptions,
    private readonly logger: Logger,
  ) {
    this.subscriber = connect(options, logger);
    this.reader = connect(options, logger);
    this.readLatestBreaker = breaker('redis-read-latest', () => this.readLatest(), options, logger);
    this.readLatestBreaker.fallback(() => undefined);
    this.subscriber.on('message', (channel: string, text: string) => {
      if (channel === this.options.channel) this.accept(text, 'redis-channel');
    });
    // After a reconnect the channel may have missed changes: catch up from the stream.
    this.subscriber.on('ready', () => this.catchUp());
  }

  async start(): Promise<void> {
    this.reader
      .connect()
      .catch((error: Error) => this.logger.warn('redis: not reachable yet', { error: error.message }));
    this.subscriber
      .connect()
      .then(() => this.subscriber.subscribe(this.options.channel))
      .catch((error: Error) =>
        this.logger.warn('redis: subscribe failed, will retry', { error: error.message }),
      );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.readLatestBreaker.shutdown();
    this.subscriber.disconnect();
    this.reader.disconnect();
    this.finished.resolve();
  }

  private catchUp(): void {
    if (this.stopped) return;
    this.readLatestBreaker.fire().catch(() => undefined);
  }

  private async readLatest(): Promise<void> {
    if (this.reader.status !== 'ready') await waitReady(this.reader, this.options.commandTimeoutMs ?? 1000);
    const entries = await this.reader.xrevrange(streamName(this.options), '+', '-', 'COUNT', 1);
    const fields = entries[0]?.[1];
    if (fields === undefined) return;
    const index = fields.indexOf('view');
    const text = index >= 0 ? fields[index + 1] : undefined;
    if (text !== undefined) this.accept(text, 'redis-stream');
  }

  private accept(text: string, via: string): void {
    try {
      const message = decodeTopologyMessage(text);
      if (message.cluster !== this.options.cluster) {
        this.logger.warn('redis: ignoring a view of another cluster', { via, cluster: message.cluster });
        return;
      }
      this.follower.offer(message.view, via);
    } catch (error) {
      this.logger.warn('redis: ignoring a malformed topology message', {
        via,
        error: (error as Error).message,
      });
    }
  }
}

function waitReady(client: Redis, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      reject(new Error(`redis not ready within ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    client.once('ready', onReady);
  });
}
