// Follows the cluster through the members' admin API: long-polls
// `GET /cluster?waitForTermAbove=N` on every member at once, each answer offered to
// the follower (the newest term wins). This is the channel that always works; Redis
// only makes it faster. Every member, not one at a time: a member that stops
// answering without closing its connection (a frozen or partitioned machine, a
// SIGSTOPped sidecar) holds a long-poll until its timeout, and a follower parked
// on it alone learned of the failover only then (seen: ~20 s before the first
// write after a failover went through a proxy-only sidecar).
import { deferred, type Service } from '../lifecycle.ts';
import type { Logger } from '../log.ts';
import type { FollowerTopology } from './follower.ts';
import { viewFromClusterResponse } from './wire.ts';

export interface ApiPollOptions {
  /** Base URLs of the members' admin APIs, e.g. `http://10.0.0.1:8008`. */
  memberUrls: string[];
  /** How long a member may hold a long-poll before answering with the current view. */
  longPollMs?: number;
  /** While no primary is known (mid-election), poll this often instead of long-polling. */
  electionPollMs?: number;
  /** Pause after a failed request before asking that member again (doubles up to 1 s). */
  retryDelayMs?: number;
}

export class ApiPollTopology implements Service {
  private readonly finished = deferred<void>();
  private readonly abort = new AbortController();
  private running = false;
  readonly done = this.finished.promise;

  constructor(
    private readonly follower: FollowerTopology,
    private readonly options: ApiPollOptions,
    private readonly logger: Logger,
  ) {
    if (options.memberUrls.length === 0)
      throw new Error('api-poll topology needs at least one member API URL');
  }

  async start(): Promise<void> {
    this.running = true;
    // One loop per member (a handful, from config): at most one request in flight each.
    Promise.all(this.options.memberUrls.map((url) => this.loop(url))).then(
      () => this.finished.resolve(),
      (error) => this.finished.reject(error),
    );
  }

  async stop(): Promise<void> {
    this.running = false;
    this.abort.abort();
    await this.finished.promise.catch(() => undefined);
  }

  private async loop(url: string): Promise<void> {
    const longPollMs = this.options.longPollMs ?? 20_000;
    const electionPollMs = this.options.electionPollMs ?? 100;
    const baseRetryMs = this.options.retryDelayMs ?? 100;
    let retryMs = baseRetryMs;
    while (this.running) {
      const known = this.follower.current();
      // Without a primary the next change may keep the same term (the promotion entry), so a
      // long-poll on the term would sleep through it: poll quickly until a primary is known.
      const waiting = known.primary !== null;
      try {
        const target = waiting
          ? `${url}/cluster?waitForTermAbove=${known.term}&timeoutMs=${longPollMs}`
          : `${url}/cluster`;
        const response = await fetch(target, {
          signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(longPollMs + 5000)]),
        });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        const outcome = this.follower.offer(viewFromClusterResponse(await response.json()), `api ${url}`);
        retryMs = baseRetryMs;
        // Also pace answers that changed nothing, so a member that ignores the long-poll is not hammered.
        if (!waiting || outcome === 'unchanged' || outcome === 'stale') await this.sleep(electionPollMs);
      } catch (error) {
        if (!this.running) return;
        this.logger.debug('api-poll: member unreachable, retrying it', {
          url,
          error: (error as Error).message,
          retryMs,
        });
        await this.sleep(retryMs);
        retryMs = Math.min(retryMs * 2, 1000);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const onAbort = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.abort.signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      this.abort.signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
