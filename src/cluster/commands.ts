// The replicated control commands: what the sidecars agree on through Raft.
// PostgreSQL's WAL carries the data; these entries carry authority (who is
// primary in which term, from which LSN) and what the leader learned about the
// members. Encoded as versioned JSON so a log dump stays readable; LSNs travel as
// decimal strings because JSON has no bigint.
import { z } from 'zod';

export type MemberKind = 'member' | 'witness';

/** A voter of the Raft group and where its services listen. */
export interface MemberSpec {
  name: string;
  kind: MemberKind;
  host: string;
  raftPort: number;
  apiPort: number;
  /** PostgreSQL port; null for a witness. */
  pgPort: number | null;
  proxyPort: number | null;
}

export type ClusterCommand =
  /** Carries nothing; a new leader's first entry (commits the previous terms' entries). */
  | { type: 'noop' }
  /** `node` promoted its PostgreSQL in `term` after replaying up to `lsn` (S). */
  | { type: 'promoted'; term: number; node: string; lsn: bigint }
  /** What the leader last observed of one member's PostgreSQL. */
  | {
      type: 'health';
      node: string;
      /** Replay LSN (backup) or current WAL LSN (primary); null when unreachable. */
      lsn: bigint | null;
      healthy: boolean;
      /** A backup whose walreceiver streams from the current primary. */
      streaming: boolean;
    }
  | { type: 'member-add'; member: MemberSpec }
  | { type: 'member-remove'; name: string }
  /** A planned switchover started in `term`: proxies hold new transactions until it settles. */
  | { type: 'switchover-intent'; term: number; from: string; to: string }
  /** The switchover of `term` did not complete in time: proxies route to the primary again. */
  | { type: 'switchover-abort'; term: number }
  /** The synchronous quorum as the leader runs it: `quorum`, `async` (degraded) or `blocked`. */
  | { type: 'durability'; term: number; mode: DurabilityMode };

export type DurabilityMode = 'quorum' | 'async' | 'blocked';

const FORMAT_VERSION = 1;
const MAX_ENCODED_BYTES = 64 * 1024;

const nodeName = z.string().min(1).max(63);
const lsnString = z.string().regex(/^\d{1,20}$/, 'an LSN as a decimal string');
const port = z.number().int().min(0).max(65535);

const memberWire = z
  .object({
    name: nodeName,
    kind: z.enum(['member', 'witness']),
    host: z.string().min(1),
    raftPort: port,
    apiPort: port,
    pgPort: port.nullable(),
    proxyPort: port.nullable(),
  })
  .strict();

const commandWire = z.discriminatedUnion('type', [
  z.object({ type: z.literal('noop') }).strict(),
  z
    .object({ type: z.literal('promoted'), term: z.number().int().min(1), node: nodeName, lsn: lsnString })
    .strict(),
  z
    .object({
      type: z.literal('health'),
      node: nodeName,
      lsn: lsnString.nullable(),
      healthy: z.boolean(),
      streaming: z.boolean(),
    })
    .strict(),
  z.object({ type: z.literal('member-add'), member: memberWire }).strict(),
  z.object({ type: z.literal('member-remove'), name: nodeName }).strict(),
  z
    .object({
      type: z.literal('switchover-intent'),
      term: z.number().int().min(1),
      from: nodeName,
      to: nodeName,
    })
    .strict(),
  z.object({ type: z.literal('switchover-abort'), term: z.number().int().min(1) }).strict(),
  z
    .object({
      type: z.literal('durability'),
      term: z.number().int().min(1),
      mode: z.enum(['quorum', 'async', 'blocked']),
    })
    .strict(),
]);

const envelope = z.object({ v: z.literal(FORMAT_VERSION), c: commandWire }).strict();

export class CommandDecodeError extends Error {
  override name = 'CommandDecodeError';
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });

export function encodeCommand(command: ClusterCommand): Uint8Array {
  const wire = toWire(command);
  // Validate on the way out too: a command we cannot decode must never reach the log.
  commandWire.parse(wire);
  const bytes = textEncoder.encode(JSON.stringify({ v: FORMAT_VERSION, c: wire }));
  if (bytes.length > MAX_ENCODED_BYTES) {
    throw new RangeError(
      `cluster command of ${bytes.length} bytes exceeds the ${MAX_ENCODED_BYTES}-byte cap`,
    );
  }
  return bytes;
}

export function decodeCommand(data: Uint8Array): ClusterCommand {
  if (data.length > MAX_ENCODED_BYTES) {
    throw new CommandDecodeError(
      `cluster command of ${data.length} bytes exceeds the ${MAX_ENCODED_BYTES}-byte cap`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(textDecoder.decode(data));
  } catch (error) {
    throw new CommandDecodeError(`cluster command is not UTF-8 JSON: ${(error as Error).message}`);
  }
  const parsed = envelope.safeParse(json);
  if (!parsed.success) {
    throw new CommandDecodeError(
      `malformed cluster command: ${parsed.error.issues[0]?.message ?? 'invalid'}`,
    );
  }
  return fromWire(parsed.data.c);
}

type Wire = z.infer<typeof commandWire>;

function toWire(command: ClusterCommand): Wire {
  switch (command.type) {
    case 'promoted':
      return { ...command, lsn: command.lsn.toString() };
    case 'health':
      return { ...command, lsn: command.lsn === null ? null : command.lsn.toString() };
    case 'member-add':
      return { type: 'member-add', member: { ...command.member } };
    default:
      return command;
  }
}

function fromWire(wire: Wire): ClusterCommand {
  switch (wire.type) {
    case 'promoted':
      return { ...wire, lsn: BigInt(wire.lsn) };
    case 'health':
      return { ...wire, lsn: wire.lsn === null ? null : BigInt(wire.lsn) };
    default:
      return wire;
  }
}
