// What a client was told about a write in flight across a fault, and the contract
// its answer must keep with what the new primary holds (reference §5.8).
import assert from 'node:assert/strict';
import type pg from 'pg';

export type Told = { ok: true } | { ok: false; code: string };

/** The answer `promise` ends with: success, or the SQLSTATE of its error ('none' if it has none). */
export async function outcome(promise: Promise<unknown>): Promise<Told> {
  try {
    await promise;
    return { ok: true };
  } catch (error) {
    return { ok: false, code: (error as { code?: string }).code ?? 'none' };
  }
}

/** Checks the contract: success ⇔ exactly one row; 40001 ⇒ no row; 08007 ⇒ at most one row. */
export function assertTruthful(told: Told, rows: number, label: string): void {
  assert.ok(rows <= 1, `${label}: applied ${rows} times`);
  if (told.ok) assert.equal(rows, 1, `${label}: told success but the new primary has no row`);
  else if (told.code === '40001') assert.equal(rows, 0, `${label}: told 40001 but the row is there`);
  else assert.equal(told.code, '08007', `${label}: unexpected error ${told.code}`);
}

/**
 * What a client of keyed requests does: on a connection-level error (57P01, 08007),
 * reconnect and send the same keyed request again (at most twice); the ledger makes
 * that safe.
 */
export async function retryKeyed(
  first: pg.Client,
  reconnect: () => Promise<pg.Client>,
  sql: string,
): Promise<unknown> {
  let client = first;
  for (let attempt = 1; ; attempt++) {
    try {
      return await client.query(sql);
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (attempt >= 3 || (code !== '57P01' && code !== '08007')) throw error;
      client = await reconnect();
    }
  }
}
