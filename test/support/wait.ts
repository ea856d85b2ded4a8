// Waiting on conditions with a deadline: tests never sleep a fixed time.
import { setTimeout as delay } from 'node:timers/promises';

export interface WaitOptions {
  /** Upper bound, not a sleep: the wait ends as soon as the condition holds. */
  timeoutMs: number;
  intervalMs?: number;
  /** What is awaited, for the timeout message. */
  what?: string;
}

/** Polls `fn` until it returns a value other than undefined/false, or throws at the deadline. */
export async function waitFor<T>(
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  options: WaitOptions,
): Promise<T> {
  const deadline = performance.now() + options.timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (performance.now() > deadline) {
      const cause = lastError === undefined ? '' : `; last error: ${String(lastError)}`;
      throw new Error(
        `timed out after ${options.timeoutMs} ms waiting for ${options.what ?? 'a condition'}${cause}`,
      );
    }
    await delay(options.intervalMs ?? 20);
  }
}
