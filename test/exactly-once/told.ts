// What a client was told about a write in flight across a fault, and the contract
// its answer must keep with what the new primary holds (reference §5.8).
import assert from 'node:assert/strict';

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
