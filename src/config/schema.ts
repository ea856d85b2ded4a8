// The whole sidecar configuration. Each module owns its section's schema; this
// file composes them. Every option has a default or is required, and the README's
// configuration reference is generated from the same names.
import { z } from 'zod';
import { apiConfigSchema } from '../api/config.ts';
import { failoverConfigSchema } from '../cluster/config.ts';
import { exactlyOnceConfigSchema } from '../exactly-once/config.ts';
import { postgresConfigSchema } from '../postgres/config.ts';
import { proxyConfigSchema } from '../proxy/config.ts';
import { raftConfigSchema } from '../raft/config.ts';

const nodeName = z
  .string()
  .regex(/^[a-z][a-z0-9_]{0,62}$/, 'lower-case letters, digits and _, starting with a letter');

export const memberSchema = z
  .object({
    name: nodeName,
    kind: z.enum(['member', 'witness']).default('member'),
    host: z.string().default('127.0.0.1'),
    raftPort: z.number().int().min(1).max(65535),
    apiPort: z.number().int().min(1).max(65535),
    /** PostgreSQL port (members only). */
    pgPort: z.number().int().min(1).max(65535).optional(),
    proxyPort: z.number().int().min(1).max(65535).optional(),
    readOnlyPort: z.number().int().min(0).max(65535).optional(),
  })
  .strict();

export const configSchema = z
  .object({
    cluster: z
      .object({
        /** Cluster name: stamped into data dirs so a node never joins another cluster's data. */
        name: z.string().min(1).default('pgward'),
        /** Shared secret: authenticates Raft frames (HMAC) and derives nothing else. */
        secret: z.string().min(16).optional(),
      })
      .strict()
      .default({ name: 'pgward' }),
    node: z
      .object({
        /** This node's name; it must match one of `members` (members and witnesses). */
        name: nodeName,
        /** member: PostgreSQL + vote; witness: vote only; proxy: proxy only, no vote. */
        role: z.enum(['member', 'witness', 'proxy']).default('member'),
        /** Where the sidecar keeps its state (PostgreSQL data dir lives below it by default). */
        dataDir: z.string(),
      })
      .strict(),
    /** Static Raft membership; `pgward member add|remove` changes it at run time. */
    members: z.array(memberSchema).default([]),
    bootstrap: z
      .object({
        /** The member that runs initdb on first start; the others clone it. */
        primary: nodeName,
      })
      .strict()
      .optional(),
    /** With no healthy backup: `block` writes (RPO 0) or `degrade` to asynchronous commit. */
    durability: z.enum(['block', 'degrade']).default('block'),
    postgres: postgresConfigSchema.default(postgresConfigSchema.parse({})),
    proxy: proxyConfigSchema.default(proxyConfigSchema.parse({})),
    raft: raftConfigSchema.default(raftConfigSchema.parse({})),
    /** Failover and fencing timings (detection, promotion, self-fencing, switchover). */
    failover: failoverConfigSchema.default(failoverConfigSchema.parse({})),
    api: apiConfigSchema.default(apiConfigSchema.parse({})),
    exactlyOnce: exactlyOnceConfigSchema.default(exactlyOnceConfigSchema.parse({})),
    redis: z
      .object({ url: z.string().optional(), channel: z.string().default('pgward:topology') })
      .strict()
      .default({ channel: 'pgward:topology' }),
    log: z
      .object({ level: z.enum(['error', 'warn', 'info', 'debug']).default('info') })
      .strict()
      .default({ level: 'info' }),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
export type MemberConfig = z.infer<typeof memberSchema>;
