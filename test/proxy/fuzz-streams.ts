// The fuzzer's streams and its checks, run by each worker of test/proxy/fuzz.test.ts on its own
// share of stream indexes. Stream i is generated from (seed, i) alone, so any stream replays
// by itself.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import winston from 'winston';
import { StaticTopology } from '../../src/cluster/view.ts';
import { proxyConfigSchema } from '../../src/proxy/config.ts';
import { ProxyServer } from '../../src/proxy/server.ts';
import { decodeErrorResponse } from '../../src/wire/backend.ts';
import { ProtocolError } from '../../src/wire/errors.ts';
import { FrameKind, MessageFramer } from '../../src/wire/framer.ts';
import * as fe from '../../src/wire/frontend.ts';
import { BackendMessage, TargetKind } from '../../src/wire/protocol.ts';
import {
  buildCancelRequest,
  buildGSSENCRequest,
  buildSSLRequest,
  buildStartupMessage,
} from '../../src/wire/startup.ts';
import { waitFor } from '../support/wait.ts';
import { serveFakePostgres, socketPair } from './fuzz-peers.ts';

/** Upper bound for one stream's session to close after the client is done; not a sleep. */
export const STREAM_DEADLINE_MS = 15_000;
const ALLOWED_FATAL = /^(08P01|28000|28P01|53300)$/;
/**
 * Streams in flight at once per worker: sessions overlap as they would on a real listener.
 * PGWARD_FUZZ_CONCURRENCY=1 replays streams one after another (a backend one stream leaves
 * in a bad state is then handed to the next stream).
 */
const CONCURRENCY = Number(process.env.PGWARD_FUZZ_CONCURRENCY ?? 64);
/** How long sessions may take to unregister after the last stream closed. */
const LEFTOVER_WAIT_MS = 5_000;
/** Failures reported in full; the rest are only counted. */
const MAX_REPORTED_FAILURES = 5;

export type Rng = () => number;

/** mulberry32: small, fast, and the same on every machine. */
export function rngFor(streamSeed: number): Rng {
  let a = streamSeed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const int = (rng: Rng, max: number) => Math.floor(rng() * max);
const pick = <T>(rng: Rng, items: readonly T[]): T => items[int(rng, items.length)]!;
const randomBytes = (rng: Rng, length: number) => Buffer.from(Array.from({ length }, () => int(rng, 256)));

const SQL = [
  'select 1',
  'BEGIN',
  'COMMIT',
  'ROLLBACK',
  'select fake_error',
  '',
  'SET search_path = app',
  'DISCARD ALL',
  'SET LOCAL x = 1',
  'select $1',
];
const NAMES = ['', 's1', 's2', 'p1'];

function validMessage(rng: Rng): Buffer {
  switch (int(rng, 16)) {
    case 0:
    case 1:
    case 2:
      return fe.buildQuery(pick(rng, SQL));
    case 3:
      return fe.buildParse({
        statement: pick(rng, NAMES),
        sql: pick(rng, SQL),
        paramTypes: int(rng, 2) ? [23] : [],
      });
    case 4: {
      const params = Array.from({ length: int(rng, 3) }, () =>
        int(rng, 4) === 0 ? null : randomBytes(rng, int(rng, 8)),
      );
      return fe.buildBind({
        portal: pick(rng, NAMES),
        statement: pick(rng, NAMES),
        paramFormats: [],
        params,
        resultFormats: [],
      });
    }
    case 5:
      return fe.buildDescribe(int(rng, 2) ? TargetKind.Statement : TargetKind.Portal, pick(rng, NAMES));
    case 6:
      return fe.buildExecute(pick(rng, NAMES), int(rng, 3));
    case 7:
      return fe.buildClose(int(rng, 2) ? TargetKind.Statement : TargetKind.Portal, pick(rng, NAMES));
    case 8:
    case 9:
      return fe.SYNC;
    case 10:
      return fe.FLUSH;
    case 11:
      return fe.buildFunctionCall({
        functionOid: 1598,
        argFormats: [],
        args: [randomBytes(rng, 2)],
        resultFormat: 0,
      });
    case 12:
      return fe.buildCopyData(randomBytes(rng, int(rng, 16)));
    case 13:
      return int(rng, 2) ? fe.COPY_DONE : fe.buildCopyFail('client gave up');
    case 14:
      return fe.buildPasswordMessage('unexpected');
    default:
      return fe.TERMINATE;
  }
}

function startupPacket(rng: Rng): Buffer {
  const params: Record<string, string> = { user: pick(rng, ['alice', 'bob']), database: 'app' };
  if (int(rng, 4) === 0) params.options = '-c search_path=app';
  if (int(rng, 8) === 0) params['_pq_.compression'] = 'on';
  if (int(rng, 4) === 0) params.application_name = 'fuzz';
  return buildStartupMessage(params);
}

function setInt32(buffer: Buffer, at: number, value: number): void {
  if (at + 4 <= buffer.length) buffer.writeInt32BE(value | 0, at);
}

const EXTREME_LENGTHS = [
  0, 1, 3, 4, 5, 7, 8, 9, 10000, 10001, 65536, 0x3fffffff, 0x40000000, 0x7fffffff, -1, -8,
];
const REQUEST_CODES = [
  80877103,
  80877104,
  80877102,
  196608,
  196609,
  (3 << 16) | 0xffff,
  2 << 16,
  4 << 16,
  0,
  -1,
  1234 << 16,
];

/** Startup-phase packets with every kind of wrong length, code and body. */
function badStartup(rng: Rng): Buffer {
  const packet =
    int(rng, 3) === 0 ? Buffer.concat([buildSSLRequest(), startupPacket(rng)]) : startupPacket(rng);
  switch (int(rng, 6)) {
    case 0:
      setInt32(packet, 0, pick(rng, EXTREME_LENGTHS));
      return packet;
    case 1:
      setInt32(packet, 4, pick(rng, REQUEST_CODES));
      return packet;
    case 2: {
      const cancel = buildCancelRequest(int(rng, 2 ** 31), int(rng, 2 ** 31));
      if (int(rng, 2)) setInt32(cancel, 0, pick(rng, EXTREME_LENGTHS));
      return int(rng, 2) ? cancel : Buffer.concat([cancel, randomBytes(rng, int(rng, 20))]);
    }
    case 3:
      // Bytes pipelined behind an SSLRequest or GSSENCRequest.
      return Buffer.concat([
        int(rng, 2) ? buildSSLRequest() : buildGSSENCRequest(),
        randomBytes(rng, int(rng, 12)),
      ]);
    case 4:
      return Buffer.concat([Buffer.from([0, 0, 0, 16]), Buffer.from([0, 3, 0, 0]), randomBytes(rng, 8)]);
    default:
      return randomBytes(rng, 8 + int(rng, 24));
  }
}

function mutate(rng: Rng, stream: Buffer, boundaries: number[]): Buffer {
  let bytes = Buffer.from(stream);
  const mutations = 1 + int(rng, 3);
  for (let m = 0; m < mutations && bytes.length > 0; m++) {
    const at = int(rng, bytes.length);
    switch (int(rng, 7)) {
      case 0:
        bytes[at] = bytes[at]! ^ (1 << int(rng, 8));
        break;
      case 1:
        bytes[at] = int(rng, 256);
        break;
      case 2:
        bytes = Buffer.concat([bytes.subarray(0, at), randomBytes(rng, 1 + int(rng, 8)), bytes.subarray(at)]);
        break;
      case 3:
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1 + int(rng, 16))]);
        break;
      case 4:
        bytes = bytes.subarray(0, at);
        break;
      case 5: {
        // A length field at a message boundary set to something extreme.
        const boundary = pick(rng, boundaries);
        setInt32(bytes, boundary + (boundary === 0 ? 0 : 1), pick(rng, EXTREME_LENGTHS));
        break;
      }
      default: {
        const boundary = pick(rng, boundaries);
        if (boundary > 0 && boundary < bytes.length) bytes[boundary] = int(rng, 256);
      }
    }
  }
  return bytes;
}

/** One client byte stream: garbage, broken startup, or a valid session that may be mutated. */
export function generate(rng: Rng): Buffer {
  const kind = rng();
  if (kind < 0.15) return randomBytes(rng, int(rng, 64));
  if (kind < 0.3) return badStartup(rng);
  const parts: Buffer[] = [];
  if (int(rng, 5) === 0) parts.push(int(rng, 2) ? buildSSLRequest() : buildGSSENCRequest());
  parts.push(startupPacket(rng));
  const count = int(rng, 12);
  for (let i = 0; i < count; i++) parts.push(validMessage(rng));
  const boundaries: number[] = [];
  let offset = 0;
  for (const part of parts) {
    boundaries.push(offset);
    offset += part.length;
  }
  const stream = Buffer.concat(parts);
  return rng() < 0.7 ? mutate(rng, stream, boundaries) : stream;
}

export function chunksOf(rng: Rng, bytes: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length; ) {
    const size = int(rng, 4) === 0 ? 1 + int(rng, 4) : 1 + int(rng, bytes.length);
    chunks.push(bytes.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

export interface Verdict {
  fatalCodes: string[];
}

/** What the client received must be well-formed, and a FATAL must be allowed and last. */
export function checkReceived(received: Buffer): Verdict {
  let bytes = received;
  // 'N' answers to SSLRequest/GSSENCRequest; a NoticeResponse would be followed by a length's 0 byte.
  while (bytes.length > 0 && bytes[0] === 0x4e && (bytes.length === 1 || bytes[1] !== 0))
    bytes = bytes.subarray(1);
  const framer = new MessageFramer({ maxMessageBytes: 1 << 30 });
  framer.push(bytes);
  const fatalCodes: string[] = [];
  let fatalSeen = false;
  try {
    for (let f = framer.next(); f !== null; f = framer.next()) {
      assert.equal(f.kind, FrameKind.Message, `the proxy's answers are small`);
      if (f.kind !== FrameKind.Message) continue;
      assert.equal(fatalSeen, false, `a message followed a FATAL error`);
      if (f.type !== BackendMessage.ErrorResponse) continue;
      const error = decodeErrorResponse(f);
      assert.notEqual(error.code, 'XX000', `internal error: ${error.message}`);
      if (error.severity === 'FATAL') {
        fatalSeen = true;
        fatalCodes.push(error.code);
        assert.match(error.code, ALLOWED_FATAL, `FATAL ${error.code} ${error.message}`);
      }
    }
  } catch (error) {
    if (error instanceof ProtocolError) assert.fail(`the proxy sent malformed bytes: ${error.message}`);
    throw error;
  }
  assert.equal(framer.bufferedBytes, 0, `the proxy sent a truncated message`);
  return { fatalCodes };
}

export interface ShardResult {
  streams: number;
  fatalCodes: Record<string, number>;
  failures: string[];
  failureCount: number;
  errorLogs: string[];
  leftoverSessions: number;
  elapsedMs: number;
}

function streamLabel(seed: number, index: number, bytes: Buffer): string {
  const hex = bytes.subarray(0, 160).toString('hex');
  return `stream ${index} (replay: PGWARD_FUZZ_SEED=${seed} PGWARD_FUZZ_ONLY=${index}; first bytes ${hex})`;
}

/** Runs the given stream indexes (until the time budget ends) against two in-process proxies (session and transaction pooling). */
export async function runShard(seed: number, indexes: number[], budgetMs: number): Promise<ShardResult> {
  const errorLogs: string[] = [];
  const logger = winston.createLogger({
    level: 'error',
    transports: [
      new winston.transports.Stream({
        stream: new Writable({
          write(chunk, _encoding, callback) {
            errorLogs.push(String(chunk));
            callback();
          },
        }),
      }),
    ],
  });
  let fakePid = 1000;
  const connector = async () => {
    const [proxyEnd, postgresEnd] = socketPair();
    serveFakePostgres(postgresEnd, fakePid++);
    return proxyEnd;
  };
  const topology = new StaticTopology({
    term: 1,
    primary: 'pg1',
    promotedAtLsn: null,
    members: [
      {
        name: 'pg1',
        role: 'primary',
        postgres: { host: '127.0.0.1', port: 1 },
        lsn: null,
        lagBytes: null,
        healthy: true,
      },
    ],
  });
  const servers = (['session', 'transaction'] as const).map(
    (poolMode) =>
      new ProxyServer({
        config: proxyConfigSchema.parse({
          port: 0,
          readOnlyPort: 0,
          poolMode,
          poolSize: 200,
          maxClientConn: 1_000_000,
          // Past STREAM_DEADLINE_MS: a login that hangs (a backend left unusable) fails the stream, not 08P01.
          loginTimeoutMs: 2 * STREAM_DEADLINE_MS,
        }),
        topology,
        logger,
        connector,
      }),
  );
  const fatalCodes: Record<string, number> = {};
  const failures: string[] = [];
  let failureCount = 0;

  async function runStream(index: number): Promise<void> {
    const rng = rngFor((seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
    const bytes = generate(rng);
    const [client, proxySide] = socketPair();
    const received: Buffer[] = [];
    client.on('data', (chunk: Buffer) => received.push(chunk));
    client.on('error', () => {});
    const closed = new Promise<'closed'>((resolve) => client.once('close', () => resolve('closed')));
    servers[index % 2]!.accept(proxySide);
    for (const chunk of chunksOf(rng, bytes)) {
      if (client.destroyed || client.writableEnded) break;
      client.write(chunk);
      if (int(rng, 3) === 0) await yieldToLoop();
    }
    // The client finishes (FIN) or vanishes (destroy); either way the session must go away.
    if (int(rng, 5) === 0) client.destroy();
    else client.end();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'hung'>((resolve) => {
      timer = setTimeout(() => resolve('hung'), STREAM_DEADLINE_MS);
    });
    const outcome = await Promise.race([closed, deadline]);
    clearTimeout(timer);
    try {
      assert.notEqual(outcome, 'hung', `the session did not close within ${STREAM_DEADLINE_MS} ms`);
      for (const code of checkReceived(Buffer.concat(received)).fatalCodes) {
        fatalCodes[code] = (fatalCodes[code] ?? 0) + 1;
      }
    } catch (error) {
      failureCount++;
      if (failures.length < MAX_REPORTED_FAILURES) {
        failures.push(`${streamLabel(seed, index, bytes)}: ${(error as Error).message}`);
      }
    }
  }

  const startedAt = performance.now();
  const stopAtEpochMs = Date.now() + budgetMs;
  let next = 0;
  let ran = 0;
  const worker = async () => {
    while (next < indexes.length && Date.now() < stopAtEpochMs) {
      await runStream(indexes[next++]!);
      ran++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, indexes.length) }, worker));
  const elapsedMs = Math.round(performance.now() - startedAt);
  // Sessions unregister once their backend is released, which may take a few more turns of the loop.
  const allGone = () => servers.every((server) => server.stats().clients === 0);
  await waitFor(allGone, { timeoutMs: LEFTOVER_WAIT_MS }).catch(() => {});
  const leftoverSessions = servers.reduce((sum, server) => sum + server.stats().clients, 0);
  await Promise.all(servers.map((server) => server.stop()));
  return {
    streams: ran,
    fatalCodes,
    failures,
    failureCount,
    errorLogs,
    leftoverSessions,
    elapsedMs,
  };
}
