// pgbench through the proxy in its three query modes, in session and transaction
// pooling (prepared mode in transaction pooling needs the per-client statement replay).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { PGBENCH, startProxy, tempDatabase } from '../support/proxy.ts';

const run = promisify(execFile);

for (const poolMode of ['session', 'transaction'] as const) {
  test(`pgbench -M simple/extended/prepared in ${poolMode} pooling`, async (t) => {
    const proxy = await startProxy(t, { poolMode, poolSize: 4 });
    const database = await tempDatabase(t);
    const common = ['-h', '127.0.0.1', '-p', String(proxy.port), '-U', 'postgres'];
    await run(PGBENCH, [...common, '-i', '-q', '-s', '1', database]);
    for (const mode of ['simple', 'extended', 'prepared']) {
      const { stdout } = await run(PGBENCH, [...common, '-n', '-c', '4', '-t', '50', '-M', mode, database]);
      assert.match(stdout, /number of transactions actually processed: 200\/200/, `${mode}: ${stdout}`);
      assert.match(stdout, /number of failed transactions: 0/, `${mode}: ${stdout}`);
    }
  });
}
