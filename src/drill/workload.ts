// The drill workload: C clients writing through the proxies, each write a row
// tagged with its id and the timeline of the primary that served it (PostgreSQL's
// timeline advances with every promotion, so it is the fencing epoch as the data
// sees it). Every call and answer goes into the history.
import pg from 'pg';
import { type HistoryRecorder, isUnknownOutcome, type StoredWrite } from './history.ts';

export type WorkloadKind = 'keyed' | 'unkeyed' | 'mixed';

export interface WorkloadOptions {
  /** Proxy URLs; a client that loses its connection moves to the next one. */
  urls: string[];
  clients: number;
  kind: WorkloadKind;
  /** Unique per run: names the table and prefixes write ids. */
  runId: string;
  recorder: HistoryRecorder;
  /** Pause between a client's writes, so a 2-core machine is not saturated. */
  thinkMs?: number;
  /** A write without an answer after this long counts as unknown and its connection is dropped. */
  queryTimeoutMs?: number;
  /** Keyed writes are retried with the same key until acknowledged, at most this many attempts. */
  maxAttempts?: number;
}

// SQLSTATEs that promise nothing was committed: the same write may be sent again.
const RETRY_SAFE = new Set(['40001', '57P03', '25006']);

export function tableName(runId: string): string {
  if (!/^[a-z0-9_]{1,40}$/.test(runId)) throw new Error(`bad drill run id '${runId}'`);
  return `pgward_drill_${runId}`;
}

function connect(url: string, queryTimeoutMs: number): pg.Client {
  return new pg.Client({
    connectionString: url,
    query_timeout: queryTimeoutMs,
    connectionTimeoutMillis: 5000,
  });
}

export async function createTable(url: string, runId: string): Promise<void> {
  const client = connect(url, 30_000);
  await client.connect();
  try {
    // No unique constraint on op_id: a write applied twice must show up as two rows.
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${tableName(runId)} (op_id text NOT NULL, client int NOT NULL, ` +
        `served_timeline int NOT NULL, served_port int, written_at timestamptz NOT NULL DEFAULT clock_timestamp())`,
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function readStored(url: string, runId: string): Promise<StoredWrite[]> {
  const client = connect(url, 60_000);
  await client.connect();
  try {
    const { rows } = await client.query<{ op_id: string; terms: number[] }>(
      `SELECT op_id, array_agg(served_timeline) AS terms FROM ${tableName(runId)} GROUP BY op_id`,
    );
    return rows.map((r) => ({ opId: r.op_id, terms: r.terms }));
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function dropTable(url: string, runId: string): Promise<void> {
  const client = connect(url, 30_000);
  await client.connect();
  try {
    await client.query(`DROP TABLE IF EXISTS ${tableName(runId)}`);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export class Workload {
  private running = false;
  private loops: Promise<void>[] = [];
  private sequence = 0;

  constructor(private readonly options: WorkloadOptions) {
    if (options.urls.length === 0) throw new Error('the workload needs at least one proxy URL');
    if (options.clients < 1 || options.clients > 256) throw new Error('clients must be between 1 and 256');
  }

  start(): void {
    this.running = true;
    for (let c = 0; c < this.options.clients; c++) this.loops.push(this.clientLoop(c));
  }

  /** Stops issuing writes and waits for the ones in flight to be answered (or time out). */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    this.loops = [];
  }

  private async clientLoop(clientId: number): Promise<void> {
    const { urls, recorder } = this.options;
    const thinkMs = this.options.thinkMs ?? 10;
    const queryTimeoutMs = this.options.queryTimeoutMs ?? 15_000;
    const maxAttempts = this.options.maxAttempts ?? 20;
    let urlIndex = clientId % urls.length;
    let client: pg.Client | null = null;
    const table = tableName(this.options.runId);
    while (this.running) {
      const keyed =
        this.options.kind === 'keyed' || (this.options.kind === 'mixed' && this.sequence % 2 === 0);
      const opId = `${this.options.runId}-${clientId}-${this.sequence++}`;
      for (let attempt = 1; attempt <= maxAttempts; attempt++) {
        if (client === null) {
          const fresh = connect(urls[urlIndex % urls.length]!, queryTimeoutMs);
          // A connection that breaks while idle emits 'error'; the next query reports it.
          fresh.on('error', () => undefined);
          try {
            await fresh.connect();
            client = fresh;
          } catch {
            await fresh.end().catch(() => undefined);
            urlIndex += 1;
            await sleep(100);
            if (!this.running) return;
            attempt -= 1;
            continue;
          }
        }
        const comment = keyed ? `/*pgward_key='${opId}'*/ ` : '';
        recorder.record({ type: 'invoke', opId, client: clientId, attempt, keyed });
        try {
          const result = await client.query<{ served_timeline: number }>(
            `${comment}INSERT INTO ${table} (op_id, client, served_timeline, served_port) VALUES ($1, $2, ` +
              `('x' || substr(pg_walfile_name(pg_current_wal_insert_lsn()), 1, 8))::bit(32)::int, inet_server_port()) ` +
              'RETURNING served_timeline',
            [opId, clientId],
          );
          recorder.record({
            type: 'ok',
            opId,
            client: clientId,
            attempt,
            term: result.rows[0]?.served_timeline ?? null,
          });
          break;
        } catch (error) {
          const err = error as { code?: unknown; message?: string };
          const sqlstate = typeof err.code === 'string' && /^[0-9A-Z]{5}$/.test(err.code) ? err.code : null;
          const message = String(err.message ?? error).slice(0, 300);
          const unknown = isUnknownOutcome(sqlstate);
          if (unknown) {
            recorder.record({ type: 'unknown', opId, client: clientId, attempt, sqlstate, message });
          } else {
            recorder.record({
              type: 'fail',
              opId,
              client: clientId,
              attempt,
              sqlstate: sqlstate ?? 'none',
              message,
            });
          }
          if (unknown || sqlstate === '57P03') {
            await client.end().catch(() => undefined);
            client = null;
            urlIndex += 1;
          }
          // Keyed writes are safe to resend whatever happened; unkeyed ones only when nothing was committed.
          const retry = keyed || (sqlstate !== null && RETRY_SAFE.has(sqlstate));
          if (!retry || !this.running) break;
          await sleep(50);
        }
      }
      if (thinkMs > 0) await sleep(thinkMs);
    }
    await client?.end().catch(() => undefined);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
