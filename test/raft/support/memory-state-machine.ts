import type { Entry, Snapshot } from '../../../src/raft/core/types.ts';
import type { RaftStateMachine } from '../../../src/raft/driver.ts';

/** A state machine that records applied normal entries as strings (snapshots as JSON). */
export class MemoryStateMachine implements RaftStateMachine {
  applied: string[] = [];
  lastIndex = 0;
  restores = 0;

  apply(entries: readonly Entry[]): void {
    for (const entry of entries) {
      if (entry.index !== this.lastIndex + 1)
        throw new Error(`applied ${entry.index} after ${this.lastIndex}`);
      this.lastIndex = entry.index;
      if (entry.type === 'normal') this.applied.push(Buffer.from(entry.data).toString());
    }
  }

  restore(snapshot: Snapshot): void {
    this.applied = JSON.parse(Buffer.from(snapshot.data).toString()) as string[];
    this.lastIndex = snapshot.metadata.index;
    this.restores++;
  }

  snapshot(): Uint8Array {
    return Buffer.from(JSON.stringify(this.applied));
  }
}
