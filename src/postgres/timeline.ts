// Timelines of a data directory, from the names in pg_wal (pure): a server that was
// promoted has the history file of its new timeline, and WAL segments are named by
// timeline. Used to tell when pg_rewind cannot help a former primary rejoin.

const HISTORY_FILE = /^([0-9A-F]{8})\.history$/;
const SEGMENT_FILE = /^([0-9A-F]{8})[0-9A-F]{16}(\.partial)?$/;

/** The newest timeline named in a pg_wal listing (1 when none is). */
export function newestTimeline(walFileNames: readonly string[]): number {
  let newest = 1;
  for (const name of walFileNames) {
    const match = HISTORY_FILE.exec(name) ?? SEGMENT_FILE.exec(name);
    if (match?.[1] === undefined) continue;
    const timeline = Number.parseInt(match[1], 16);
    if (timeline > newest) newest = timeline;
  }
  return newest;
}

/** The timeline of a WAL file name as pg_walfile_name() prints it. */
export function timelineOfWalFile(name: string): number {
  const match = SEGMENT_FILE.exec(name);
  if (match?.[1] === undefined) throw new Error(`'${name}' is not a WAL segment name`);
  return Number.parseInt(match[1], 16);
}

/**
 * Whether pg_rewind can bring a former primary onto the new primary's history. A
 * new primary that followed this node promoted onto a newer timeline than any this
 * node has seen. A new primary on a timeline this node also reached (its own
 * promotion that never became the cluster's, in a term that lost its leader at
 * once) forked elsewhere under the same timeline ID: pg_rewind compares timeline
 * IDs, answers 'no rewind required', and the server then cannot follow ("record
 * with incorrect prev-link") for good. That case needs a fresh base backup.
 */
export function rewindCanWork(localNewestTimeline: number, sourceTimeline: number): boolean {
  return localNewestTimeline < sourceTimeline;
}
