// Starting and stopping the sidecar processes of a local cluster, by pid only.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isAlive } from '../postgres/instance.ts';
import { type LocalNode, sidecarLog } from './layout.ts';

const PGWARD_BIN = fileURLToPath(new URL('../../bin/pgward.js', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Starts `pgward start --config` for one node, detached (its own session), logging to
 * sidecar.log; with a namespace, through `ip netns exec` (which execs in place, so the
 * pid is the sidecar's and PostgreSQL, a child, runs in the namespace too).
 */
export function spawnSidecar(node: LocalNode, namespace: string | null = null): number {
  const logFd = openSync(sidecarLog(node), 'a');
  try {
    const argv = [process.execPath, PGWARD_BIN, 'start', '--config', node.configFile];
    const [command, args] =
      namespace === null ? [argv[0]!, argv.slice(1)] : ['ip', ['netns', 'exec', namespace, ...argv]];
    const child = spawn(command, args, {
      cwd: REPO_ROOT,
      detached: true,
      stdio: ['ignore', logFd, logFd],
      env: process.env,
    });
    child.unref();
    if (child.pid === undefined) throw new Error(`could not start the sidecar of ${node.name}`);
    return child.pid;
  } finally {
    closeSync(logFd);
  }
}

/** True when `pid` is alive and is the sidecar of `node` (not a recycled pid). */
export function isSidecarOf(pid: number | undefined, node: LocalNode): boolean {
  if (pid === undefined || !isAlive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(node.configFile);
  } catch {
    return false;
  }
}

export function sendSignal(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/**
 * Waits until none of `pids` is `alive` or the bound passes; returns those still alive.
 * `alive` should check identity too (cmdline), since a pid is reused once it exits.
 */
export async function waitAllExit(
  pids: number[],
  timeoutMs: number,
  alive: (pid: number) => boolean = isAlive,
): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let running = pids.filter(alive);
  while (running.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    running = running.filter(alive);
  }
  return running;
}

/** The last lines of a node's sidecar log, for error messages. */
export function logTail(node: LocalNode, lines = 3): string {
  try {
    return readFileSync(sidecarLog(node), 'utf8').trim().split('\n').slice(-lines).join(' | ');
  } catch {
    return '(no log)';
  }
}
