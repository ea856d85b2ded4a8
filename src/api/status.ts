// The status JSON of `GET /cluster` and `pgward status --json` (issue 3's shape;
// keys may be added, none removed). Each sidecar reports its own view; the local
// cluster's `status` merges the members' answers.
import type { NodeRole } from '../cluster/view.ts';

export interface NodeStatus {
  name: string;
  role: NodeRole;
  sidecar: { pid: number | null; api: string | null };
  proxy: { host: string; port: number; readOnlyPort: number };
  postgres: {
    host: string;
    port: number;
    /** The postmaster's pid. */
    pid: number | null;
    dataDir: string | null;
    /** 'X/Y'; on a primary, its current WAL LSN (it receives nothing). */
    receiveLsn: string | null;
    replayLsn: string | null;
    /** On a primary only: pg_current_wal_lsn(). */
    currentLsn?: string | null;
    lagBytes: number | null;
    sync: 'quorum' | 'async' | null;
    /** True while the probe succeeds. */
    healthy?: boolean;
  };
}

export interface ClusterStatus {
  cluster: string;
  term: number;
  primary: string | null;
  nodes: NodeStatus[];
  /** The node whose sidecar answered (absent in the merged local status). */
  reportedBy?: string;
}
