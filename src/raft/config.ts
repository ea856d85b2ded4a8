import { z } from 'zod';

export const raftConfigSchema = z
  .object({
    host: z.string().default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(7400),
    tickMs: z.number().int().min(1).default(50),
    heartbeatTicks: z.number().int().min(1).default(2),
    /** Election timeout is drawn from [electionTicks, 2*electionTicks) ticks. */
    electionTicks: z.number().int().min(2).default(10),
    /** Assumed worst clock drift rate between nodes (rho in the lease bound). */
    maxClockDrift: z.number().min(0).max(0.5).default(0.01),
    leaseMs: z.number().int().min(1).default(400),
    leaseStopMarginMs: z.number().int().min(0).default(100),
    /** Raft WAL and snapshots; defaults to <node.dataDir>/raft. */
    dataDir: z.string().optional(),
    /** A local snapshot (and WAL compaction) after this many applied entries. */
    snapshotEveryEntries: z.number().int().min(1).default(1000),
  })
  .strict();

export type RaftConfig = z.infer<typeof raftConfigSchema>;
