// Test-only pause points on the commit path, so a fault-injection test can kill
// the primary at an exact moment. Off unless a test arms one through this API:
// the data path then pays one boolean check per point. In a sidecar process a test
// reaches them through the admin API routes of src/api/routes/failpoints.ts, which
// exist only when the sidecar starts with PGWARD_TEST_FAILPOINTS=1.

export const FAILPOINT_NAMES = [
  'before-fence',
  'between-fence-and-commit',
  'commit-sent',
] as const satisfies readonly FailpointName[];

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

/** Disarms every point; requests already paused stay paused until their handle is released. */
export function disarmAllFailpoints(): void {
  armed.clear();
  failpointsActive = false;
}

/** Whether the admin API may arm failpoints: only when a test starts the sidecar with this flag. */
export function testFailpointsEnabled(env: NodeJS.ProcessEnv): boolean {
  return env.PGWARD_TEST_FAILPOINTS === '1';
}

/**
 * Failpoints driven from outside the process (the test-only admin routes): arm a
 * point, ask whether requests reached it, release them. Releasing or resetting lets
 * every paused request go on, so a test that gives up never leaves one hanging.
 */
export class FailpointControl {
  private readonly points = new Map<FailpointName, { release(): void; reached: boolean; count: number }>();

  arm(name: FailpointName, count: number): void {
    this.points.get(name)?.release();
    const handle = armFailpoint(name, count);
    const entry = { release: handle.release, reached: false, count };
    handle.reached.then(() => {
      entry.reached = true;
    });
    this.points.set(name, entry);
  }

  state(): Record<string, { count: number; reached: boolean }> {
    const out: Record<string, { count: number; reached: boolean }> = {};
    for (const [name, entry] of this.points) out[name] = { count: entry.count, reached: entry.reached };
    return out;
  }

  /** Releases the requests paused at `name`; false when it was not armed. */
  release(name: FailpointName): boolean {
    const entry = this.points.get(name);
    if (entry === undefined) return false;
    entry.release();
    this.points.delete(name);
    return true;
  }

  reset(): void {
    disarmAllFailpoints();
    for (const entry of this.points.values()) entry.release();
    this.points.clear();
  }
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
