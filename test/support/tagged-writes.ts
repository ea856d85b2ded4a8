// Writers for zombie-primary and node-crash tests: clients that insert rows through
// a proxy, each row tagged by the PostgreSQL that wrote it (its port and WAL
// timeline), and that record when each write was sent and how it ended. The
// checks below compare that history with what the surviving primary holds:
// every acknowledged write is there, and a write sent after the fault was never
// acknowledged by the old primary.
import { readFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import type { TestCluster, TestNode } from './cluster.ts';
import { waitFor } from './wait.ts';

export const TAGGED_TABLE = 'tagged_writes';

/** The timeline the serving primary writes on (an error on a server in recovery). */
export const TIMELINE_SQL = `('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int`;

export interface TaggedWrite {
  id: number;
  writer: string;
  /** performance.now() when the INSERT was sent. */
  sentAtMs: number;
  outcome: 'pending' | 'ok' | 'error';
  answeredAtMs: number | null;
  /** SQLSTATE or error message of a failed write. */
  error: string | null;
}

export interface TaggedRow {
  id: number;
  port: number;
  tli: number;
}

export async function createTaggedTable(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 30_000 });
  client.on('error', () => {});
  await client.connect();
  try {
    await client.query(
      `CREATE TABLE ${TAGGED_TABLE} (id int PRIMARY KEY, writer text NOT NULL, port int NOT NULL, tli int NOT NULL)`,
    );
  } finally {
    await client.end().catch(() => {});
  }
}

/** Inserts one tagged row with `client`; the caller records the outcome. */
export function insertTagged(client: pg.Client, id: number, writer: string): Promise<unknown> {
  return client.query(
    `INSERT INTO ${TAGGED_TABLE} (id, writer, port, tli) VALUES ($1, $2, inet_server_port(), ${TIMELINE_SQL})`,
    [id, writer],
  );
}

export interface TaggedWriterOptions {
  /** Pause between two writes. */
  thinkMs?: number;
  /** Pause before reopening a connection that failed to open. */
  reconnectMs?: number;
  /** The INSERT of one row (a test with its own table tags rows its own way). */
  insert?: (client: pg.Client, id: number, writer: string) => Promise<unknown>;
}

/**
 * One client writing in a loop through `url` (one connection, reopened after an
 * error) until stopped. Ids come from `nextId`, shared by all writers, so every
 * write is distinct.
 */
export class TaggedWriter {
  readonly writes: TaggedWrite[] = [];
  private running = false;
  private loop: Promise<void> | null = null;
  private client: pg.Client | null = null;
  private readonly thinkMs: number;
  private readonly reconnectMs: number;
  private readonly insert: NonNullable<TaggedWriterOptions['insert']>;

  constructor(
    readonly name: string,
    private readonly url: string,
    private readonly nextId: () => number,
    options: TaggedWriterOptions = {},
  ) {
    this.thinkMs = options.thinkMs ?? 20;
    this.reconnectMs = options.reconnectMs ?? 100;
    this.insert = options.insert ?? insertTagged;
  }

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  /** Stops after the write in flight ends (bounded by the query timeout). */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    await this.client?.end().catch(() => {});
    this.client = null;
  }

  acknowledged(): TaggedWrite[] {
    return this.writes.filter((w) => w.outcome === 'ok');
  }

  private async run(): Promise<void> {
    while (this.running) {
      if (this.client === null) {
        const client = new pg.Client({
          connectionString: this.url,
          connectionTimeoutMillis: 20_000,
          query_timeout: 90_000,
        });
        client.on('error', () => {});
        try {
          await client.connect();
          this.client = client;
        } catch {
          await client.end().catch(() => {});
          await delay(this.reconnectMs);
          continue;
        }
      }
      const write: TaggedWrite = {
        id: this.nextId(),
        writer: this.name,
        sentAtMs: performance.now(),
        outcome: 'pending',
        answeredAtMs: null,
        error: null,
      };
      this.writes.push(write);
      try {
        await this.insert(this.client, write.id, this.name);
        write.outcome = 'ok';
      } catch (error) {
        write.outcome = 'error';
        write.error = (error as { code?: string }).code ?? (error as Error).message;
        await this.client.end().catch(() => {});
        this.client = null;
      }
      write.answeredAtMs = performance.now();
      await delay(this.thinkMs);
    }
  }
}

/**
 * Creates the tagged table through `primary`'s proxy and starts one writer through
 * every node's proxy (named `via-<node>`, pushed onto `writers` so the caller's
 * cleanup sees them even when this throws); returns once each has 3 acknowledged
 * writes, with the timeline they were written on.
 */
export async function startWritersOnEveryProxy(
  cluster: TestCluster,
  primary: TestNode,
  writers: TaggedWriter[],
): Promise<{ timeline: number }> {
  await createTaggedTable(primary.proxyUrl);
  const timeline = await timelineOf(cluster, primary);
  let nextId = 1;
  for (const node of cluster.nodes) {
    writers.push(new TaggedWriter(`via-${node.name}`, node.proxyUrl, () => nextId++));
  }
  for (const writer of writers) writer.start();
  await waitFor(() => writers.every((w) => w.acknowledged().length >= 3), {
    timeoutMs: 60_000,
    what: 'every writer to have written before the fault',
  });
  return { timeline };
}

export async function readTaggedRows(cluster: TestCluster, node: TestNode): Promise<Map<number, TaggedRow>> {
  const rows = await cluster.sql<TaggedRow>(node, `SELECT id, port, tli FROM ${TAGGED_TABLE} ORDER BY id`);
  return new Map(rows.map((r) => [r.id, r]));
}

export async function timelineOf(cluster: TestCluster, node: TestNode): Promise<number> {
  const rows = await cluster.sql<{ tli: number }>(node, `SELECT ${TIMELINE_SQL} AS tli`);
  const tli = rows[0]?.tli;
  if (tli === undefined) throw new Error(`no timeline from ${node.name}`);
  return tli;
}

/** Acknowledged writes missing from `stored` (the new primary's rows), as readable lines. */
export function lostWrites(writes: TaggedWrite[], stored: Map<number, TaggedRow>): string[] {
  return writes
    .filter((w) => w.outcome === 'ok' && !stored.has(w.id))
    .map((w) => `write ${w.id} (${w.writer}) was acknowledged but is not on the new primary`);
}

/**
 * Acknowledged writes sent after `afterMs` that the old primary served (its port, or
 * a timeline not newer than its own), as readable lines. Past that instant its term
 * was over: such a write must have been held and served by the new primary, or failed.
 */
export function servedByOldPrimary(
  writes: TaggedWrite[],
  stored: Map<number, TaggedRow>,
  afterMs: number,
  old: { port: number; timeline: number },
): string[] {
  const out: string[] = [];
  for (const w of writes) {
    const row = stored.get(w.id);
    if (w.outcome !== 'ok' || w.sentAtMs <= afterMs || row === undefined) continue;
    if (row.port === old.port || row.tli <= old.timeline) {
      out.push(
        `write ${w.id} (${w.writer}) sent ${Math.round(w.sentAtMs - afterMs)} ms after the old term ended was acknowledged from port ${row.port} timeline ${row.tli} (old primary: port ${old.port}, timeline ${old.timeline})`,
      );
    }
  }
  return out;
}

/** A PostgreSQL postmaster and its children (backends, walsenders, auxiliaries), from /proc. */
export function postgresProcesses(node: TestNode): number[] {
  const postmaster = node.postmasterPid();
  if (postmaster === null) return [];
  try {
    const text = readFileSync(`/proc/${postmaster}/task/${postmaster}/children`, 'utf8').trim();
    return [postmaster, ...(text === '' ? [] : text.split(/\s+/).map(Number))];
  } catch {
    return [postmaster];
  }
}

/** Sends `signal` to each pid; one that exited already is skipped. */
export function signalAll(pids: number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  }
}

/** Counts of writes by outcome (and error code), for the test's log line. */
export function summarize(writes: TaggedWrite[]): string {
  const counts = new Map<string, number>();
  for (const w of writes) {
    const key = w.outcome === 'error' ? `error ${w.error}` : w.outcome;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([k, n]) => `${k}: ${n}`).join(', ');
}
