// The cluster view as JSON, for the Redis channel, the stream and `GET /cluster`.
// LSNs travel as decimal strings because JSON has no bigint.
import { z } from 'zod';
import type { ClusterView, MemberView } from '../cluster/view.ts';
import { parseLsn } from '../postgres/lsn.ts';

const lsnText = z.string().regex(/^\d+$/, 'an LSN as a decimal string');

const memberJson = z.object({
  name: z.string(),
  role: z.enum(['primary', 'backup', 'witness', 'down', 'unknown']),
  postgres: z.object({ host: z.string(), port: z.number().int().min(1).max(65535) }).nullable(),
  lsn: lsnText.nullable(),
  lagBytes: z.number().nullable(),
  healthy: z.boolean(),
});

const viewJson = z.object({
  term: z.number().int().min(0),
  primary: z.string().nullable(),
  promotedAtLsn: lsnText.nullable(),
  members: z.array(memberJson),
});

export type ClusterViewJson = z.infer<typeof viewJson>;

/** A message on the topology channel: the view plus who published it and for which cluster. */
const messageJson = z.object({
  v: z.literal(1),
  cluster: z.string(),
  from: z.string(),
  view: viewJson,
});

export type TopologyMessage = { cluster: string; from: string; view: ClusterView };

export function viewToJson(view: ClusterView): ClusterViewJson {
  return {
    term: view.term,
    primary: view.primary,
    promotedAtLsn: view.promotedAtLsn === null ? null : view.promotedAtLsn.toString(),
    members: view.members.map((m) => ({
      name: m.name,
      role: m.role,
      postgres: m.postgres,
      lsn: m.lsn === null ? null : m.lsn.toString(),
      lagBytes: m.lagBytes,
      healthy: m.healthy,
    })),
  };
}

/** Parses a view from JSON (extra fields are ignored, so `GET /cluster` may carry more). Throws on bad input. */
export function viewFromJson(input: unknown): ClusterView {
  const parsed = viewJson.parse(input);
  return {
    term: parsed.term,
    primary: parsed.primary,
    promotedAtLsn: parsed.promotedAtLsn === null ? null : BigInt(parsed.promotedAtLsn),
    members: parsed.members.map(
      (m): MemberView => ({
        name: m.name,
        role: m.role,
        postgres: m.postgres,
        lsn: m.lsn === null ? null : BigInt(m.lsn),
        lagBytes: m.lagBytes,
        healthy: m.healthy,
      }),
    ),
  };
}

export function encodeTopologyMessage(message: TopologyMessage): string {
  return JSON.stringify({
    v: 1,
    cluster: message.cluster,
    from: message.from,
    view: viewToJson(message.view),
  });
}

/** Decodes a channel or stream message; throws with a readable reason on anything malformed. */
export function decodeTopologyMessage(text: string): TopologyMessage {
  const parsed = messageJson.parse(JSON.parse(text));
  return { cluster: parsed.cluster, from: parsed.from, view: viewFromJson(parsed.view) };
}

const statusNode = z.object({
  name: z.string(),
  role: z.enum(['primary', 'backup', 'witness', 'down', 'unknown']),
  postgres: z
    .object({
      host: z.string(),
      port: z.number().int(),
      replayLsn: z.string().nullable().optional(),
      currentLsn: z.string().nullable().optional(),
      lagBytes: z.number().nullable().optional(),
      healthy: z.boolean().optional(),
    })
    .nullable()
    .optional(),
});

const statusBody = z.object({
  term: z.number().int().min(0),
  primary: z.string().nullable(),
  nodes: z.array(statusNode),
});

/**
 * The view inside a `GET /cluster` answer: its `view` field (viewToJson) when present,
 * else derived from the status JSON's `nodes` (LSNs there are 'X/Y' text).
 */
export function viewFromClusterResponse(body: unknown): ClusterView {
  if (body !== null && typeof body === 'object') {
    const record = body as Record<string, unknown>;
    if (record.view !== undefined) return viewFromJson(record.view);
    if (Array.isArray(record.members)) return viewFromJson(record);
  }
  const status = statusBody.parse(body);
  return {
    term: status.term,
    primary: status.primary,
    promotedAtLsn: null,
    members: status.nodes.map((n): MemberView => {
      const lsnText = n.postgres?.currentLsn ?? n.postgres?.replayLsn ?? null;
      return {
        name: n.name,
        role: n.role,
        postgres:
          n.postgres && n.role !== 'witness' ? { host: n.postgres.host, port: n.postgres.port } : null,
        lsn: lsnText === null ? null : parseLsn(lsnText),
        lagBytes: n.postgres?.lagBytes ?? null,
        healthy: n.postgres?.healthy ?? n.role !== 'down',
      };
    }),
  };
}
