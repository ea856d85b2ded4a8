// The exactly-once layer's hooks, exercised with a test implementation: a fence query on
// the same backend before a COMMIT (simple protocol) and before the Sync that ends an
// implicit transaction (extended protocol, inside it), result capture through a filter,
// and an answer synthesized without forwarding.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type ClientRequest,
  NoopHooks,
  type OwnedQueryResult,
  type ProxyHooks,
  type RequestContext,
} from '../../src/proxy/hooks.ts';
import { buildCommandComplete, buildReadyForQuery, decodeCommandComplete } from '../../src/wire/backend.ts';
import { FLUSH } from '../../src/wire/frontend.ts';
import { TransactionStatus } from '../../src/wire/protocol.ts';
import { startProxy, tempDatabase } from '../support/proxy.ts';

const FENCE =
  'SELECT pg_current_xact_id_if_assigned()::text AS xid, pg_current_wal_insert_lsn()::text AS lsn';

class FenceHooks extends NoopHooks implements ProxyHooks {
  override readonly interceptsRequests = true;
  readonly fences: OwnedQueryResult[] = [];
  readonly tags: string[] = [];

  private readonly capture = (type: number, message: Buffer): Buffer => {
    if (type === 0x43)
      this.tags.push(decodeCommandComplete({ buffer: message, bodyStart: 5, end: message.length }));
    return message;
  };

  override async onRequest(ctx: RequestContext, request: ClientRequest): Promise<boolean> {
    if (request.kind === 'query' && request.sql.includes('/*answered*/')) {
      ctx.sendToClient(
        Buffer.concat([buildCommandComplete('INSERT 0 1'), buildReadyForQuery(TransactionStatus.Idle)]),
      );
      return true;
    }
    if (request.kind === 'query' && /^\s*commit\b/i.test(request.sql)) {
      const backend = await ctx.backend();
      this.fences.push(await backend.query(FENCE));
      await backend.forward([request.message.raw], this.capture);
      return true;
    }
    const sync = request.kind === 'batch' ? request.messages.at(-1) : undefined;
    if (
      request.kind === 'batch' &&
      sync?.type === 0x53 &&
      ctx.session.transactionStatus === 'I' &&
      request.messages.length > 1
    ) {
      const backend = await ctx.backend();
      // Flush makes PostgreSQL answer now, before the Sync that would commit.
      await backend.forward([...request.messages.slice(0, -1).map((m) => m.raw), FLUSH], this.capture);
      this.fences.push(await backend.query(FENCE, []));
      await backend.forward([sync.raw]);
      return true;
    }
    return false;
  }
}

test('hooks: fence before COMMIT and before an implicit Sync on the same backend, capture, synthesize', async (t) => {
  const hooks = new FenceHooks();
  const proxy = await startProxy(t, { poolMode: 'transaction', poolSize: 2 }, { hooks });
  const database = await tempDatabase(t);
  const client = await proxy.connect(database);
  await client.query('CREATE TABLE t (x int)');

  await client.query('BEGIN');
  await client.query('INSERT INTO t VALUES (1)');
  await client.query('COMMIT');
  assert.equal(hooks.fences.length, 1);
  assert.match(hooks.fences[0]!.rows[0]![0]!, /^\d+$/, 'the fence saw the transaction id of the INSERT');
  assert.match(hooks.fences[0]!.rows[0]![1]!, /^[0-9A-F]+\/[0-9A-F]+$/);
  assert.deepEqual(hooks.fences[0]!.columns, ['xid', 'lsn']);
  assert.ok(hooks.tags.includes('COMMIT'));

  // node-postgres sends a parameterized statement as Parse/Bind/Describe/Execute/Sync.
  const inserted = await client.query('INSERT INTO t VALUES ($1), ($2)', [2, 3]);
  assert.equal(inserted.rowCount, 2);
  assert.equal(hooks.fences.length, 2);
  assert.match(hooks.fences[1]!.rows[0]![0]!, /^\d+$/, 'the fence ran inside the implicit transaction');
  assert.ok(hooks.tags.includes('INSERT 0 2'));

  const answered = await client.query('INSERT INTO t VALUES (99) /*answered*/');
  assert.equal(answered.rowCount, 1);
  const rows = await client.query('SELECT array_agg(x ORDER BY x)::text AS xs FROM t');
  assert.equal(rows.rows[0].xs, '{1,2,3}', 'the synthesized answer was not forwarded');
});
