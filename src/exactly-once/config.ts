import { z } from 'zod';

export const exactlyOnceConfigSchema = z
  .object({
    /**
     * `off`: forward everything as is. `keyed`: honour idempotency keys only.
     * `all`: keys, plus the commit fence on every write transaction, so unkeyed
     * commits in flight at a failover get their true outcome too.
     */
    mode: z.enum(['off', 'keyed', 'all']).default('all'),
    /** Largest stored result per key; larger results keep only the command tag. */
    maxStoredResultBytes: z
      .number()
      .int()
      .min(0)
      .default(64 * 1024),
    /** How long a key is remembered; a retry after this may run again. */
    retentionHours: z.number().min(0).default(24),
    /** Rows deleted per GC statement, so one batch never holds locks for long. */
    gcBatchSize: z.number().int().min(1).default(1000),
    /** Time between GC runs on the primary. */
    gcIntervalMs: z.number().int().min(1000).default(60000),
    /** How long resolving an in-flight commit may take before the client gets 08007. */
    resolveTimeoutMs: z.number().int().min(1).default(15000),
  })
  .strict();

export type ExactlyOnceConfig = z.infer<typeof exactlyOnceConfigSchema>;
