// The issue-7 workload: C node-postgres clients insert N rows with unique ids
// through the proxies of a real local cluster while a driver kills the primary's
// postmaster at progress marks. Every call (one attempt of one row) is recorded
// with its start and end time, so the test can tell whether an error met a kill.
//
// Keyed rows carry `/*pgward_key='<id>'*/` (simple or extended protocol) or
// `set_config('pgward.idempotency_key', $1, true)` in BEGIN ... COMMIT, and are
// retried with the same key after any answer the contract allows for a lost
// backend, until they succeed. Unkeyed rows are retried only after 40001
// (nothing committed); after 08007 (outcome unknown) the row is given up.
import pg from 'pg';

export type KeyedForm = 'comment-simple' | 'comment-extended' | 'set-config';
export type UnkeyedForm = 'simple' | 'extended' | 'transaction';
export type Form = KeyedForm | UnkeyedForm;

export interface Call {
  row: number;
  client: number;
  form: Form;
  attempt: number;
  /** Date.now() when the call (the transaction's first message) was sent. */
  start: number;
  end: number;
  /** 'ok', 'duplicate' (PW004: the key already committed), or the SQLSTATE / 'conn:<reason>'. */
  result: string;
}

export interface WorkloadOptions {
  urls: string[];
  table: string;
  keyed: boolean;
  rows: number;
  clients: number;
  /** Prefix of the row ids (and keys): unique per run. */
  runId: string;
  /** Awaited before each new row: lets the kill driver hold the workload at a mark. */
  gate: () => Promise<void>;
  onAck: () => void;
  /** A row still not acknowledged after this many attempts is a failure. */
  maxAttempts?: number;
  /** Date.now() after which the clients stop (rows left get 'deadline'): the workload is bounded. */
  deadline: number;
}

export interface WorkloadResult {
  calls: Call[];
  /** Row index → final result ('ok' | 'duplicate' | last error). */
  final: Map<number, string>;
}

/** SQLSTATEs after which a keyed request is retried with the same key (README table). */
export const KEYED_RETRY = new Set(['40001', '08007', '57P01', '57P03']);
/** The only errors an unkeyed client may see (issue 7). */
export const UNKEYED_ALLOWED = new Set(['40001', '08007']);

export function rowId(runId: string, row: number): string {
  return `${runId}-${row}`;
}

function formOf(keyed: boolean, row: number): Form {
  const forms: Form[] = keyed
    ? ['comment-extended', 'comment-simple', 'comment-extended', 'set-config']
    : ['extended', 'simple', 'extended', 'transaction'];
  return forms[row % forms.length]!;
}

function codeOf(error: unknown): string {
  const e = error as { code?: unknown; message?: unknown };
  if (typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code)) return e.code;
  const reason = typeof e.code === 'string' ? e.code : String(e.message ?? error);
  return `conn:${reason.slice(0, 80)}`;
}

/** One attempt of one row; resolves to 'ok' | 'duplicate' or throws the client's error. */
async function attempt(client: pg.Client, o: WorkloadOptions, row: number, form: Form, c: number) {
  const id = rowId(o.runId, row);
  const insert = `INSERT INTO ${o.table} (id, client, form) VALUES`;
  switch (form) {
    case 'comment-simple':
      await client.query(`${insert} ('${id}', ${c}, '${form}') /*pgward_key='${id}'*/`);
      return 'ok';
    case 'comment-extended':
      await client.query(`/*pgward_key='${id}'*/ ${insert} ($1, $2, $3)`, [id, c, form]);
      return 'ok';
    case 'simple':
      await client.query(`${insert} ('${id}', ${c}, '${form}')`);
      return 'ok';
    case 'extended':
      await client.query(`${insert} ($1, $2, $3)`, [id, c, form]);
      return 'ok';
    case 'set-config':
    case 'transaction': {
      await client.query('BEGIN');
      try {
        if (form === 'set-config') {
          await client.query("SELECT set_config('pgward.idempotency_key', $1, true)", [id]);
        }
        await client.query(`${insert} ($1, $2, $3)`, [id, c, form]);
        await client.query('COMMIT');
        return 'ok';
      } catch (error) {
        // Leave the connection idle for the retry (the proxy answers ROLLBACK itself after 40001).
        await client.query('ROLLBACK').catch(() => {});
        if (codeOf(error) === 'PW004') return 'duplicate';
        throw error;
      }
    }
  }
}

export async function runWorkload(o: WorkloadOptions): Promise<WorkloadResult> {
  const calls: Call[] = [];
  const final = new Map<number, string>();
  const maxAttempts = o.maxAttempts ?? 20;

  const clientLoop = async (c: number) => {
    let urlIndex = c % o.urls.length;
    let client: pg.Client | null = null;
    const drop = async () => {
      await client?.end().catch(() => {});
      client = null;
      urlIndex++;
    };
    for (let row = c; row < o.rows; row += o.clients) {
      await o.gate();
      const form = formOf(o.keyed, row);
      for (let n = 1; ; n++) {
        if (Date.now() > o.deadline) {
          final.set(row, 'deadline');
          break;
        }
        if (client === null) {
          const fresh = new pg.Client({
            connectionString: o.urls[urlIndex % o.urls.length],
            connectionTimeoutMillis: 10_000,
            query_timeout: 120_000,
          });
          fresh.on('error', () => {});
          try {
            await fresh.connect();
            client = fresh;
          } catch {
            // A proxy that cannot take a connection now: try the next one (bounded by the test's deadline).
            await fresh.end().catch(() => {});
            urlIndex++;
            await new Promise((r) => setTimeout(r, 100));
            n--;
            continue;
          }
        }
        const start = Date.now();
        let result: string;
        try {
          result = await attempt(client, o, row, form, c);
        } catch (error) {
          result = codeOf(error);
        }
        calls.push({ row, client: c, form, attempt: n, start, end: Date.now(), result });
        if (result === 'ok' || result === 'duplicate') {
          final.set(row, result);
          o.onAck();
          break;
        }
        // 40001 keeps the session; anything else may have closed it.
        if (result !== '40001') await drop();
        const retry = o.keyed ? KEYED_RETRY.has(result) : result === '40001';
        if (!retry || n >= maxAttempts) {
          final.set(row, result);
          break;
        }
      }
    }
    await drop();
  };

  await Promise.all(Array.from({ length: o.clients }, (_, c) => clientLoop(c)));
  return { calls, final };
}
