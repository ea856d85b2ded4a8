// Holding requests while there is no writable primary (issue 6 §5): a request waits at
// a transaction boundary until the topology offers a route again, bounded in time,
// count and bytes; past a bound it fails with 57P03, and a CancelRequest ends the wait
// with 57014.
import { HoldError } from './hooks.ts';

export interface HoldLimits {
  maxHeldRequests: number;
  maxHeldBytes: number;
}

interface Waiter {
  wake(): void;
}

export class HoldGate {
  held = 0;
  heldBytes = 0;
  /** Requests that ever had to wait, and those that gave up (57P03 or 57014). */
  heldTotal = 0;
  expiredTotal = 0;
  private readonly waiters = new Set<Waiter>();

  constructor(private readonly limits: HoldLimits) {}

  /**
   * Waits until `ready()` holds (checked now and on every `notify`), `deadlineMs`
   * (wall clock) passes, or `signal` aborts (a client CancelRequest). `recheckMs` also
   * re-checks periodically (a primary that refused connections may be back).
   */
  async hold(
    bytes: number,
    deadlineMs: number,
    signal: AbortSignal,
    ready: () => boolean,
    recheckMs = Number.POSITIVE_INFINITY,
  ): Promise<void> {
    if (ready()) return;
    if (this.held + 1 > this.limits.maxHeldRequests || this.heldBytes + bytes > this.limits.maxHeldBytes) {
      this.expiredTotal += 1;
      throw new HoldError(
        '57P03',
        `no writable primary and the hold queue is full (${this.held} requests, ${this.heldBytes} bytes); retry later`,
      );
    }
    this.held += 1;
    this.heldBytes += bytes;
    this.heldTotal += 1;
    try {
      while (!ready()) await this.waitOnce(deadlineMs, signal, recheckMs);
    } catch (error) {
      this.expiredTotal += 1;
      throw error;
    } finally {
      this.held -= 1;
      this.heldBytes -= bytes;
    }
  }

  /** The topology changed (or a retry is due): every waiter re-checks its condition. */
  notify(): void {
    for (const waiter of [...this.waiters]) waiter.wake();
  }

  /** Resolves at the next `notify` (the topology changed); `cancel` stops listening. */
  nextChange(): { changed: Promise<void>; cancel(): void } {
    let waiter: Waiter | null = null;
    const changed = new Promise<void>((resolve) => {
      const self: Waiter = {
        wake: () => {
          this.waiters.delete(self);
          resolve();
        },
      };
      waiter = self;
      this.waiters.add(self);
    });
    return {
      changed,
      cancel: () => {
        if (waiter !== null) this.waiters.delete(waiter);
      },
    };
  }

  private waitOnce(deadlineMs: number, signal: AbortSignal, recheckMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const remainingMs = deadlineMs - Date.now();
      if (signal.aborted) return reject(cancelled());
      if (remainingMs <= 0) return reject(expired());
      const waiter: Waiter = {
        wake: () => {
          cleanup();
          resolve();
        },
      };
      const timer = setTimeout(
        () => {
          cleanup();
          if (Date.now() >= deadlineMs) reject(expired());
          else resolve();
        },
        Math.min(remainingMs, recheckMs),
      );
      const onAbort = () => {
        cleanup();
        reject(cancelled());
      };
      const cleanup = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.waiters.delete(waiter);
      };
      signal.addEventListener('abort', onAbort);
      this.waiters.add(waiter);
    });
  }
}

function expired(): HoldError {
  return new HoldError(
    '57P03',
    'no writable primary came up within the hold timeout; nothing was sent, the request is safe to retry',
  );
}

function cancelled(): HoldError {
  return new HoldError(
    '57014',
    'canceling statement due to user request (it was held waiting for a primary)',
  );
}
