import { z } from 'zod';

/** Failover and fencing timings (see DESIGN.md "Failover, step by step"). */
export const failoverConfigSchema = z
  .object({
    /** How often the controller re-evaluates its decisions (besides reacting to events). */
    loopMs: z.number().int().min(5).default(50),
    /** A primary whose lease has been lost for longer than this stops its PostgreSQL (self-fencing). */
    fenceGraceMs: z.number().int().min(0).default(1000),
    /** A backup counts as streaming for campaigning this long after its walreceiver last streamed. */
    streamingGraceMs: z.number().int().min(0).default(5000),
    /** With no leader for this long, any healthy database member may campaign (the vote restriction still orders them). */
    campaignFallbackMs: z.number().int().min(0).default(10_000),
    /** A new leader waits at most this long for its replay to catch up before promoting anyway. */
    promoteCatchUpTimeoutMs: z.number().int().min(0).default(5000),
    /** A planned switchover gives up (and releases held writes) after this long. */
    switchoverTimeoutMs: z.number().int().min(100).default(10_000),
    /** Running transactions get this long to finish before the switchover cuts them off. */
    switchoverDrainMs: z.number().int().min(0).default(2000),
    /** How often the leader collects the members' health (LSN, streaming) over their API. */
    healthPollMs: z.number().int().min(10).default(200),
  })
  .strict();

export type FailoverConfig = z.infer<typeof failoverConfigSchema>;
