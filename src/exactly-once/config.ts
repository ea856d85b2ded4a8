import { z } from 'zod';

export const exactlyOnceConfigSchema = z
  .object({
    mode: z.enum(['off', 'keyed', 'all']).default('all'),
    /** Largest stored result per key; larger results keep only the command tag. */
    maxStoredResultBytes: z.number().int().min(0).default(64 * 1024),
    retentionHours: z.number().min(0).default(24),
    gcBatchSize: z.number().int().min(1).default(1000),
    gcIntervalMs: z.number().int().min(1000).default(60000),
  })
  .strict();

export type ExactlyOnceConfig = z.infer<typeof exactlyOnceConfigSchema>;
