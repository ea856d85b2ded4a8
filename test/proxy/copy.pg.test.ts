// COPY FROM STDIN and COPY TO STDOUT through the proxy (psql \copy), including a COPY
// that fails on bad data: the error comes back verbatim and the session goes on.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { PSQL, startProxy, tempDatabase } from '../support/proxy.ts';

function psql(
  port: number,
  database: string,
  args: string[],
  input = '',
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(PSQL, [
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-U',
      'postgres',
      '-d',
      database,
      '-At',
      ...args,
    ]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(input);
  });
}

for (const poolMode of ['session', 'transaction'] as const) {
  test(`COPY in and out, and a failing COPY (${poolMode} pooling)`, async (t) => {
    const proxy = await startProxy(t, { poolMode });
    const database = await tempDatabase(t);
    const rows = Array.from({ length: 20000 }, (_, i) => `${i}\tname-${i}`).join('\n') + '\n';
    const create = await psql(proxy.port, database, ['-c', 'CREATE TABLE c (id int PRIMARY KEY, name text)']);
    assert.equal(create.code, 0, create.stderr);
    const copyIn = await psql(
      proxy.port,
      database,
      ['-v', 'ON_ERROR_STOP=1', '-c', '\\copy c FROM STDIN'],
      rows,
    );
    assert.equal(copyIn.code, 0, copyIn.stderr);
    const copyOut = await psql(proxy.port, database, [
      '-c',
      '\\copy (SELECT * FROM c ORDER BY id) TO STDOUT',
    ]);
    assert.equal(copyOut.code, 0, copyOut.stderr);
    assert.equal(copyOut.stdout, rows);
    const bad = await psql(
      proxy.port,
      database,
      ['-c', '\\copy c FROM STDIN', '-c', 'SELECT count(*) FROM c'],
      'x\tnot-a-number\n',
    );
    assert.match(bad.stderr, /invalid input syntax for type integer: "x"/);
    assert.equal(bad.stdout.trim(), '20000', 'the session went on after the failed COPY');
  });
}
