// Every long-running part (proxy listener, Raft driver, probe, replication
// supervisor, API server) implements this one interface.
export interface Service {
  /** Resolves once the service is ready to do its job. */
  start(): Promise<void>;
  /** Drains and stops; idempotent. Resolves when nothing of it is left running. */
  stop(): Promise<void>;
  /** Settles when the service ends, for whatever reason (rejects on a fatal error). */
  readonly done: Promise<void>;
}

/** A promise with its resolvers exposed; used to build `done`. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A `done` nobody awaits must not crash the process with an unhandled rejection.
  promise.catch(() => {});
  return { promise, resolve, reject };
}
