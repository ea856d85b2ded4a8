import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { fingerprint, normalizeStatement } from '../../src/exactly-once/fingerprint.ts';

test('whitespace, comments, keyword case and trailing semicolons do not change the fingerprint', () => {
  const a = fingerprint({ sql: "INSERT INTO t VALUES (1, 'A  b') /*pgward_key='k1'*/" });
  const b = fingerprint({ sql: "/*pgward_key='k2',traceparent='x'*/ insert   into T values(1,'A  b');" });
  assert.equal(a, b);
});

test('literals, quoted identifiers and parameters do', () => {
  const base = fingerprint({ sql: "INSERT INTO t VALUES ('a')" });
  assert.notEqual(base, fingerprint({ sql: "INSERT INTO t VALUES ('A')" }));
  assert.notEqual(fingerprint({ sql: 'SELECT "A"' }), fingerprint({ sql: 'SELECT "a"' }));
  const p = (params: Array<Uint8Array | null>, paramFormats?: number[]) =>
    fingerprint({ sql: 'INSERT INTO t VALUES ($1, $2)', params, paramFormats });
  assert.notEqual(p([Buffer.from('1'), Buffer.from('2')]), p([Buffer.from('12'), Buffer.from('')]));
  assert.notEqual(p([Buffer.from('1'), null]), p([Buffer.from('1'), Buffer.from('')]));
  assert.notEqual(p([Buffer.from('1'), null], [0]), p([Buffer.from('1'), null], [1]));
  assert.equal(p([Buffer.from('1'), null], [0]), p([Buffer.from('1'), null]));
});

test('normalizeStatement keeps literal text exactly', () => {
  assert.equal(normalizeStatement("SELECT  'Hello  World' ;"), "select 'Hello  World'");
});

test('property: distinct parameter lists give distinct fingerprints', () => {
  const param = fc.option(fc.uint8Array({ maxLength: 8 }), { nil: null });
  fc.assert(
    fc.property(fc.array(param, { maxLength: 4 }), fc.array(param, { maxLength: 4 }), (a, b) => {
      const same = JSON.stringify(a.map((x) => x && [...x])) === JSON.stringify(b.map((x) => x && [...x]));
      assert.equal(
        fingerprint({ sql: 'SELECT $1', params: a }) === fingerprint({ sql: 'SELECT $1', params: b }),
        same,
      );
    }),
  );
});
