// Test-only pause points on the commit path, so a fault-injection test can kill
// the primary at an exact moment. Off unless a test arms one through this API:
// the data path then pays one boolean check per point.

export type FailpointName =
  /** The write finished; the proxy has not yet read the fence. */
  | 'before-fence'
  /** The fence `(xid, L)` is recorded; COMMIT is not yet sent. */
  | 'between-fence-and-commit'
  /** COMMIT was sent; its answer (local commit + synchronous replication wait) has not arrived. */
  | 'commit-sent';

interface Armed {
  /** Requests still to pause here. */
  left: number;
  reached: () => void;
  release: Promise<void>;
}

const armed = new Map<FailpointName, Armed>();
/** Read on the data path: false unless a test armed a failpoint. */
export let failpointsActive = false;

export interface FailpointHandle {
  /** Resolves when a request reaches the point (and is paused there). */
  reached: Promise<void>;
  /** Lets the paused request continue. */
  release(): void;
}

/** Arms `name` for the next `count` requests that pass it; `reached` resolves when all of them are paused. */
export function armFailpoint(name: FailpointName, count = 1): FailpointHandle {
  let reached!: () => void;
  let release!: () => void;
  const reachedPromise = new Promise<void>((resolve) => {
    reached = resolve;
  });
  const releasePromise = new Promise<void>((resolve) => {
    release = resolve;
  });
  armed.set(name, { left: count, reached, release: releasePromise });
  failpointsActive = true;
  return { reached: reachedPromise, release };
}

export function disarmAllFailpoints(): void {
  armed.clear();
  failpointsActive = false;
}

/** Pauses here when `name` is armed; call only behind `if (failpointsActive)`. */
export async function failpoint(name: FailpointName): Promise<void> {
  const point = armed.get(name);
  if (point === undefined) return;
  point.left--;
  if (point.left === 0) {
    armed.delete(name);
    failpointsActive = armed.size > 0;
    point.reached();
  }
  await point.release;
}
