// Killing a node the way a dead machine goes: its sidecar and its whole PostgreSQL
// (postmaster, backends, walsenders) by SIGKILL, found from /proc.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import type { TestNode } from './cluster.ts';

/** The postmaster and its children (backends, walsenders): the whole PostgreSQL of a node. */
export function postgresTree(postmaster: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Field 4 of /proc/PID/stat is the parent pid; the command may hold spaces, so split after ')'.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === postmaster) children.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return [postmaster, ...children];
}

/** kill -9 of each pid; one already gone is skipped. */
export function killAll(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** kill -9 of the node's sidecar first (so it cannot hand over cleanly), then of its PostgreSQL. */
export function killWholeNode(node: TestNode): void {
  const sidecar = node.sidecarPid();
  const postmaster = node.postmasterPid();
  assert.ok(sidecar !== null && postmaster !== null, `${node.name} runs a sidecar and PostgreSQL`);
  const tree = postgresTree(postmaster);
  process.kill(sidecar, 'SIGKILL');
  killAll(tree);
}
