import { z } from 'zod';

export const proxyConfigSchema = z
  .object({
    enabled: z.boolean().default(true),
    host: z.string().default('127.0.0.1'),
    /** Read-write port: always reaches the current primary. */
    port: z.number().int().min(0).max(65535).default(6432),
    /** Read-only port: a healthy backup within maxLagBytes, else the primary. 0 disables it. */
    readOnlyPort: z.number().int().min(0).max(65535).default(6442),
    poolMode: z.enum(['session', 'transaction']).default('session'),
    /** Backend connections per (database, user) pair and backend server. */
    poolSize: z.number().int().min(1).default(20),
    maxClientConn: z.number().int().min(1).default(10000),
    serverIdleTimeoutMs: z.number().int().min(0).default(600000),
    loginTimeoutMs: z.number().int().min(1).default(15000),
    /** How long a request waits for a busy pool (every backend connection in use) before 53300. */
    queryWaitTimeoutMs: z.number().int().min(1).default(120000),
    /** How long a new transaction waits while there is no writable primary, before 57P03. */
    holdTimeoutMs: z.number().int().min(0).default(10000),
    maxHeldRequests: z.number().int().min(0).default(10000),
    maxHeldBytes: z
      .number()
      .int()
      .min(0)
      .default(64 * 1024 * 1024),
    /** Backups further behind than this are skipped by the read-only port. */
    maxLagBytes: z
      .number()
      .int()
      .min(0)
      .default(16 * 1024 * 1024),
    auth: z
      .object({
        method: z.enum(['trust', 'scram-sha-256']).default('trust'),
        /** PgBouncer-style userlist: `"user" "SCRAM-SHA-256$..."` or plain passwords, one per line. */
        authFile: z.string().optional(),
      })
      .strict()
      .default({ method: 'trust' }),
    tls: z.object({ certFile: z.string(), keyFile: z.string() }).strict().optional(),
    /** Credentials the proxy itself uses to log in to PostgreSQL. */
    backendUser: z.string().optional(),
    backendPassword: z.string().optional(),
  })
  .strict();

export type ProxyConfig = z.infer<typeof proxyConfigSchema>;
