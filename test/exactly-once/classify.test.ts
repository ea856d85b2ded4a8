import assert from 'node:assert/strict';
import { test } from 'node:test';
import { classify } from '../../src/exactly-once/classify.ts';
import { tokenize } from '../../src/exactly-once/lexer.ts';

const kind = (sql: string) => classify(sql).kind;

test('plain reads skip the fence', () => {
  for (const sql of [
    'SELECT abalance FROM pgbench_accounts WHERE aid = 42',
    'select count(*), max(a) from t',
    'SHOW server_version',
    'VALUES (1), (2)',
    'TABLE t',
    'SELECT * FROM a JOIN b ON (a.id = b.id) WHERE a.x IN (SELECT 1)',
    "SELECT ';' AS semi -- INSERT",
  ]) {
    assert.equal(kind(sql), 'read', sql);
  }
});

test('anything that may write or lock is a write', () => {
  for (const sql of [
    'INSERT INTO t VALUES (1)',
    'UPDATE t SET a = 1',
    'SELECT * FROM t FOR UPDATE',
    'SELECT * FROM t FOR SHARE',
    "SELECT nextval('s')",
    'SELECT my_function(1)',
    'SELECT public.f()',
    'SELECT * INTO new_t FROM t',
    'WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x',
    'CREATE TABLE t (a int)',
    'DO $$ BEGIN PERFORM 1; END $$',
    'CALL p()',
    'TRUNCATE t',
  ]) {
    assert.equal(kind(sql), 'write', sql);
  }
});

test('statements that cannot run in a transaction block are never wrapped', () => {
  for (const sql of [
    'VACUUM t',
    'vacuum',
    'CREATE DATABASE x',
    'DROP DATABASE x',
    'CREATE INDEX CONCURRENTLY i ON t (a)',
    "ALTER SYSTEM SET work_mem = '1MB'",
    "CREATE TABLESPACE s LOCATION '/x'",
    'REINDEX DATABASE x',
    'COPY t FROM STDIN',
    'DISCARD ALL',
  ]) {
    assert.equal(kind(sql), 'unwrappable', sql);
  }
});

test('transaction control is recognized with its verb', () => {
  const verbs: Record<string, string> = {
    BEGIN: 'begin',
    'START TRANSACTION': 'begin',
    COMMIT: 'commit',
    'end;': 'commit',
    ROLLBACK: 'rollback',
    ABORT: 'rollback',
    'ROLLBACK TO SAVEPOINT a': 'rollback-to',
    'SAVEPOINT a': 'savepoint',
    'RELEASE a': 'release',
    "PREPARE TRANSACTION 'g'": 'prepare-transaction',
    "COMMIT PREPARED 'g'": 'commit-prepared',
    "ROLLBACK PREPARED 'g'": 'rollback-prepared',
  };
  for (const [sql, verb] of Object.entries(verbs))
    assert.deepEqual(classify(sql), { kind: 'transaction', verb });
});

test('session statements, multi-statement text and empty text', () => {
  assert.equal(kind("SET work_mem = '1MB'"), 'session');
  assert.equal(kind('LISTEN ch'), 'session');
  assert.equal(kind('PREPARE p AS SELECT 1'), 'session');
  assert.deepEqual(classify('INSERT INTO t VALUES (1); INSERT INTO t VALUES (2);'), {
    kind: 'multi',
    count: 2,
  });
  assert.equal(kind(' ; -- nothing\n'), 'empty');
  assert.equal(kind("SELECT 'a;b'; "), 'read');
  assert.equal(kind('SELECT $$;$$'), 'read');
});

test('lexer: nested comments, E-strings, dollar quotes and unterminated input', () => {
  const texts = (sql: string) => tokenize(sql).map((t) => t.kind);
  assert.deepEqual(texts('/* a /* b */ c */x'), ['block-comment', 'word']);
  assert.deepEqual(texts("E'it\\'s'"), ['string']);
  assert.deepEqual(texts('$fn$ a;b $fn$'), ['dollar-string']);
  assert.equal(tokenize("SELECT 'open").at(-1)?.unterminated, true);
  assert.deepEqual(texts('$1'), ['param']);
});
