import { z } from 'zod';

export const postgresConfigSchema = z
  .object({
    /** Directory of initdb, pg_ctl, pg_basebackup, pg_rewind; found on PATH, pg_config or /usr/lib/postgresql/<v>/bin when unset. */
    bindir: z.string().optional(),
    /** The data directory of this node's PostgreSQL; defaults to <node.dataDir>/pgdata. */
    dataDir: z.string().optional(),
    /** Address PostgreSQL listens on and the sidecar connects to. */
    host: z.string().default('127.0.0.1'),
    /** PostgreSQL's port; a `members` entry's pgPort for this node wins. */
    port: z.number().int().min(1).max(65535).default(5432),
    /** Superuser the sidecar connects as for probes and control queries. */
    superuser: z.string().default('postgres'),
    /** Role used by backups to stream WAL. */
    replicationUser: z.string().default('pgward_replicator'),
    /** Password of superuser and replicationUser (loopback connections use trust and need none). */
    password: z.string().optional(),
    /** IPv4 networks PostgreSQL trusts like loopback (no password); `pgward up --netns` sets its private bridge. */
    trustNetworks: z
      .array(z.string().regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, 'an IPv4 CIDR such as 10.64.1.0/24'))
      .max(16)
      .default([]),
    /** How often the sidecar probes its PostgreSQL. */
    probeIntervalMs: z.number().int().min(10).default(100),
    /** Consecutive failed probes after which PostgreSQL counts as down. */
    probeFailures: z.number().int().min(1).default(3),
    /** A probe slower than this counts as a miss. */
    probeTimeoutMs: z.number().int().min(10).default(1000),
    /** Bound on PostgreSQL startup (crash recovery included) before the sidecar gives up on this attempt. */
    startTimeoutMs: z.number().int().min(1000).default(120000),
    /** Bound on a fast shutdown before it escalates to immediate, then SIGKILL. */
    stopTimeoutMs: z.number().int().min(1000).default(60000),
    /** First delay before restarting a PostgreSQL that died; doubles per failed attempt up to 5 s. */
    restartDelayMs: z.number().int().min(0).default(200),
    /** Extra postgresql.conf settings. */
    parameters: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
  })
  .strict();

export type PostgresConfig = z.infer<typeof postgresConfigSchema>;
