// What pg_controldata prints about a data directory, parsed (pure). A switchover
// reads it after stopping the primary: a clean shutdown and the location of its
// final (shutdown) checkpoint decide whether the node can rejoin without pg_rewind.
import { parseLsn } from './lsn.ts';

export interface ControlData {
  /** "Database cluster state", e.g. 'shut down', 'shut down in recovery', 'in production'. */
  state: string;
  /** "Latest checkpoint location". */
  checkpointLsn: bigint;
  /** "Latest checkpoint's TimeLineID". */
  timeline: number;
}

export function parseControlData(text: string): ControlData {
  const field = (name: string): string => {
    const match = new RegExp(`^${name}:\\s+(.+)$`, 'm').exec(text);
    if (match?.[1] === undefined) throw new Error(`pg_controldata printed no '${name}'`);
    return match[1].trim();
  };
  const timeline = Number(field("Latest checkpoint's TimeLineID"));
  if (!Number.isInteger(timeline) || timeline < 1)
    throw new Error(`pg_controldata: bad timeline ${timeline}`);
  return {
    state: field('Database cluster state'),
    checkpointLsn: parseLsn(field('Latest checkpoint location')),
    timeline,
  };
}
