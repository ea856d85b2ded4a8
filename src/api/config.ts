import { z } from 'zod';

export const apiConfigSchema = z
  .object({
    host: z.string().default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(8008),
    /** Bearer token for mutations (switchover, failover, member changes). */
    token: z.string().optional(),
  })
  .strict();

export type ApiConfig = z.infer<typeof apiConfigSchema>;
