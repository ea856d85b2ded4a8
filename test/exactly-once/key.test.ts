import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  checkKey,
  extractCommentKey,
  MAX_KEY_LENGTH,
  parseSqlcommenter,
  recognizeSetConfigKey,
  stripKeyComment,
} from '../../src/exactly-once/key.ts';

test('a leading or trailing sqlcommenter comment carries the key', () => {
  assert.deepEqual(extractCommentKey("/*pgward_key='k1'*/ INSERT INTO t VALUES (1)"), {
    kind: 'key',
    key: 'k1',
    where: 'leading',
  });
  assert.deepEqual(extractCommentKey("INSERT INTO t VALUES (1) /*pgward_key='k2'*/"), {
    kind: 'key',
    key: 'k2',
    where: 'trailing',
  });
  assert.deepEqual(extractCommentKey("INSERT INTO t VALUES (1) /*pgward_key='k3'*/;"), {
    kind: 'key',
    key: 'k3',
    where: 'trailing',
  });
  assert.deepEqual(extractCommentKey("INSERT INTO t VALUES (1); /*traceparent='x',pgward_key='k4'*/ "), {
    kind: 'key',
    key: 'k4',
    where: 'trailing',
  });
});

test("values are URL-decoded and \\' unescaped, per sqlcommenter", () => {
  assert.deepEqual(extractCommentKey("SELECT 1 /*pgward_key='order%2F42%20x'*/"), {
    kind: 'key',
    key: 'order/42 x',
    where: 'trailing',
  });
  assert.deepEqual(
    parseSqlcommenter("a='it\\'s',b='2'"),
    new Map([
      ['a', "it's"],
      ['b', '2'],
    ]),
  );
});

test('a key-looking text that is not a leading/trailing comment is not a key', () => {
  assert.deepEqual(extractCommentKey("SELECT '/*pgward_key=''x''*/'"), { kind: 'none' });
  assert.deepEqual(extractCommentKey("SELECT /*pgward_key='x'*/ 1 FROM t"), { kind: 'none' });
  assert.deepEqual(extractCommentKey('SELECT 1 /* plain comment */'), { kind: 'none' });
  assert.deepEqual(extractCommentKey("SELECT 1 /*other='x'*/"), { kind: 'none' });
  assert.deepEqual(extractCommentKey("SELECT 1 /*pgward_key='x'"), { kind: 'none' });
});

test('a malformed key is reported, never silently ignored', () => {
  assert.equal(extractCommentKey("SELECT 1 /*pgward_key=''*/").kind, 'invalid');
  assert.equal(extractCommentKey("SELECT 1 /*pgward_key='%E0%A4%A'*/").kind, 'invalid');
  assert.equal(
    extractCommentKey(`SELECT 1 /*pgward_key='${'x'.repeat(MAX_KEY_LENGTH + 1)}'*/`).kind,
    'invalid',
  );
  assert.equal(extractCommentKey("/*pgward_key='a'*/ SELECT 1 /*pgward_key='b'*/").kind, 'invalid');
  assert.equal(checkKey('a\u0001').ok, false);
});

test('stripKeyComment removes only the key comment', () => {
  assert.equal(stripKeyComment("/*pgward_key='k'*/ INSERT INTO t VALUES (1)"), 'INSERT INTO t VALUES (1)');
  assert.equal(stripKeyComment("INSERT INTO t VALUES (1) /*pgward_key='k'*/"), 'INSERT INTO t VALUES (1)');
  assert.equal(stripKeyComment('/* keep */ SELECT 1'), '/* keep */ SELECT 1');
});

test('set_config form: parameter or literal, is_local must be true', () => {
  assert.deepEqual(recognizeSetConfigKey("SELECT set_config('pgward.idempotency_key', $1, true)"), {
    kind: 'param',
    index: 1,
  });
  assert.deepEqual(
    recognizeSetConfigKey("select  SET_CONFIG ( 'pgward.idempotency_key' , 'abc' , TRUE ) ;"),
    {
      kind: 'literal',
      key: 'abc',
    },
  );
  assert.equal(
    recognizeSetConfigKey("SELECT set_config('pgward.idempotency_key', 'abc', false)").kind,
    'invalid',
  );
  assert.equal(recognizeSetConfigKey("SELECT set_config('other.setting', 'abc', true)").kind, 'none');
  assert.equal(recognizeSetConfigKey('SELECT 1').kind, 'none');
  assert.equal(
    recognizeSetConfigKey("SELECT set_config('pgward.idempotency_key', '', true)").kind,
    'invalid',
  );
});

test('property: any valid key survives encode → comment → extract, leading or trailing', () => {
  fc.assert(
    fc.property(
      fc.string({ minLength: 1, maxLength: 60, unit: 'grapheme' }).filter((k) => checkKey(k).ok),
      fc.boolean(),
      fc.constantFrom('INSERT INTO t VALUES (1)', "UPDATE t SET a = 'x;y' WHERE id = 2", 'DELETE FROM t'),
      (key, leading, statement) => {
        const comment = `/*pgward_key='${encodeURIComponent(key).replaceAll("'", "\\'")}'*/`;
        const sql = leading ? `${comment} ${statement}` : `${statement} ${comment}`;
        const found = extractCommentKey(sql);
        assert.deepEqual(found, { kind: 'key', key, where: leading ? 'leading' : 'trailing' });
        assert.equal(stripKeyComment(sql), statement);
      },
    ),
  );
});
