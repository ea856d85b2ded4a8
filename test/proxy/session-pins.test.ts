import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type PinKind, pinEffects, pinnedSessionLost, SessionPins } from '../../src/proxy/session-pins.ts';

/** Kinds held after each text ran to completion at a boundary (committed). */
function heldAfter(...texts: string[]): PinKind[] {
  const pins = new SessionPins();
  for (const sql of texts) {
    pins.note(pinEffects(sql));
    pins.settle(true);
  }
  return pins.held();
}

test('each kind of state that cannot move pins the session', () => {
  assert.deepEqual(heldAfter('CREATE TEMP TABLE t (a int)'), ['temp']);
  assert.deepEqual(heldAfter('create temporary table t (a int)'), ['temp']);
  assert.deepEqual(heldAfter('CREATE GLOBAL TEMPORARY TABLE t (a int)'), ['temp']);
  assert.deepEqual(heldAfter('CREATE LOCAL TEMP TABLE t AS SELECT 1'), ['temp']);
  assert.deepEqual(heldAfter('CREATE OR REPLACE TEMP VIEW v AS SELECT 1'), ['temp']);
  assert.deepEqual(heldAfter('CREATE TEMP SEQUENCE s'), ['temp']);
  assert.deepEqual(heldAfter('SELECT * INTO TEMP t FROM x'), ['temp']);
  assert.deepEqual(heldAfter('CREATE TABLE pg_temp.t (a int)'), ['temp']);
  assert.deepEqual(heldAfter('CREATE FUNCTION "pg_temp".f() RETURNS int LANGUAGE sql AS $$SELECT 1$$'), [
    'temp',
  ]);
  assert.deepEqual(heldAfter('EXPLAIN ANALYZE CREATE TEMP TABLE t AS SELECT 1'), ['temp']);
  assert.deepEqual(heldAfter('SELECT pg_advisory_lock(1)'), ['advisory']);
  assert.deepEqual(heldAfter('select PG_TRY_ADVISORY_LOCK(1, 2)'), ['advisory']);
  assert.deepEqual(heldAfter('SELECT pg_catalog.pg_advisory_lock_shared (7)'), ['advisory']);
  assert.deepEqual(heldAfter('SELECT pg_try_advisory_lock_shared/* c */(7)'), ['advisory']);
  assert.deepEqual(heldAfter('SELECT "pg_advisory_lock"(1)'), ['advisory']);
  assert.deepEqual(heldAfter('SELECT x FROM t WHERE pg_try_advisory_lock(t.id)'), ['advisory']);
  assert.deepEqual(heldAfter('LISTEN ch'), ['listen']);
  assert.deepEqual(heldAfter('DECLARE c CURSOR WITH HOLD FOR SELECT 1'), ['hold-cursor']);
  assert.deepEqual(heldAfter('declare c binary no scroll cursor with hold for select 1'), ['hold-cursor']);
  assert.deepEqual(heldAfter('PREPARE p AS SELECT 1'), ['sql-prepared']);
  assert.deepEqual(heldAfter('PREPARE p AS SELECT pg_advisory_lock($1)'), ['advisory', 'sql-prepared']);
});

test('what does not pin: transaction-scoped forms, comments, strings, identifiers', () => {
  assert.deepEqual(heldAfter('SELECT pg_advisory_xact_lock(1)'), []);
  assert.deepEqual(heldAfter('SELECT pg_try_advisory_xact_lock_shared(1)'), []);
  assert.deepEqual(heldAfter('SELECT pg_advisory_unlock(1)'), []);
  assert.deepEqual(heldAfter('DECLARE c CURSOR FOR SELECT 1'), []);
  assert.deepEqual(
    heldAfter('DECLARE c CURSOR WITHOUT HOLD FOR WITH hold AS (SELECT 1) SELECT * FROM hold'),
    [],
  );
  assert.deepEqual(heldAfter('/* LISTEN x; CREATE TEMP TABLE t() */ SELECT 1'), []);
  assert.deepEqual(heldAfter('-- SELECT pg_advisory_lock(1)\nSELECT 1'), []);
  assert.deepEqual(heldAfter("SELECT 'LISTEN x', 'pg_advisory_lock(1)', 'CREATE TEMP TABLE t()'"), []);
  assert.deepEqual(heldAfter("SELECT E'it\\'s; LISTEN x'"), []);
  assert.deepEqual(heldAfter('SELECT $q$; LISTEN x; $q$'), []);
  assert.deepEqual(heldAfter('SELECT temp FROM weather'), []);
  assert.deepEqual(heldAfter('INSERT INTO weather (temp) VALUES (1)'), []);
  assert.deepEqual(heldAfter('CREATE TABLE temp (a int)'), []);
  assert.deepEqual(heldAfter('SELECT "LISTEN"'), []);
  assert.deepEqual(heldAfter('NOTIFY ch'), []);
  assert.deepEqual(
    heldAfter('CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$BEGIN CREATE TEMP TABLE t(); END$$'),
    [],
    'a function body runs only when called',
  );
});

test('multi-statement simple queries: every statement counts, in order', () => {
  assert.deepEqual(heldAfter('SELECT 1; LISTEN a; SELECT 2'), ['listen']);
  assert.deepEqual(heldAfter('LISTEN a; UNLISTEN *'), []);
  assert.deepEqual(heldAfter('UNLISTEN *; LISTEN a'), ['listen']);
  assert.deepEqual(heldAfter('DISCARD ALL; CREATE TEMP TABLE t (a int)'), ['temp']);
  assert.deepEqual(heldAfter('create temp table t(a int);select pg_advisory_lock(1);listen x'), [
    'temp',
    'advisory',
    'listen',
  ]);
});

test('releases: only those that surely drop every object of the kind, or the named one', () => {
  assert.deepEqual(heldAfter('LISTEN a', 'LISTEN b', 'UNLISTEN a'), ['listen']);
  assert.deepEqual(heldAfter('LISTEN a', 'LISTEN b', 'UNLISTEN a', 'UNLISTEN B'), []);
  assert.deepEqual(heldAfter('LISTEN "A"', 'UNLISTEN a'), ['listen'], 'quoted names keep their case');
  assert.deepEqual(heldAfter('LISTEN "A"', 'UNLISTEN "A"'), []);
  assert.deepEqual(heldAfter('LISTEN a', 'UNLISTEN *'), []);
  assert.deepEqual(heldAfter('DECLARE c CURSOR WITH HOLD FOR SELECT 1', 'CLOSE c'), []);
  assert.deepEqual(heldAfter('DECLARE c CURSOR WITH HOLD FOR SELECT 1', 'CLOSE d'), ['hold-cursor']);
  assert.deepEqual(heldAfter('DECLARE c CURSOR WITH HOLD FOR SELECT 1', 'CLOSE ALL'), []);
  assert.deepEqual(heldAfter('DECLARE c CURSOR WITH HOLD FOR SELECT 1', 'close "all"'), ['hold-cursor']);
  assert.deepEqual(
    heldAfter('SELECT pg_advisory_lock(1)', 'SELECT pg_advisory_unlock(1)'),
    ['advisory'],
    'locks stack',
  );
  assert.deepEqual(heldAfter('SELECT pg_advisory_lock(1)', 'SELECT pg_advisory_unlock_all()'), []);
  assert.deepEqual(
    heldAfter('CREATE TEMP TABLE t (a int)', 'DROP TABLE t'),
    ['temp'],
    'DROP may name another table',
  );
  assert.deepEqual(heldAfter('CREATE TEMP TABLE t (a int)', 'DISCARD TEMP'), []);
  assert.deepEqual(heldAfter('CREATE TEMP TABLE t (a int)', 'discard temporary'), []);
  assert.deepEqual(heldAfter('CREATE TEMP TABLE t (a int)', 'DISCARD PLANS'), ['temp']);
  assert.deepEqual(heldAfter('PREPARE p AS SELECT 1', 'DEALLOCATE p'), []);
  assert.deepEqual(heldAfter('PREPARE p AS SELECT 1', 'DEALLOCATE PREPARE ALL'), []);
  assert.deepEqual(
    heldAfter(
      'CREATE TEMP TABLE t (a int)',
      'SELECT pg_advisory_lock(1)',
      'LISTEN a',
      'DECLARE c CURSOR WITH HOLD FOR SELECT 1',
      'PREPARE p AS SELECT 1',
      'DISCARD ALL',
    ),
    [],
  );
});

test('DO blocks: the body is not parsed, any matching word pins (conservative)', () => {
  assert.deepEqual(heldAfter("DO $$BEGIN EXECUTE 'CREATE TEMP TABLE t (a int)'; END$$"), ['temp']);
  assert.deepEqual(heldAfter('DO LANGUAGE plpgsql $b$BEGIN PERFORM pg_advisory_lock(1); END$b$'), [
    'advisory',
  ]);
  assert.deepEqual(heldAfter("DO 'BEGIN EXECUTE ''LISTEN x''; END'"), ['listen']);
  assert.deepEqual(heldAfter('DO $$BEGIN PERFORM 1; END$$'), []);
});

test('a transaction: acquisitions hold at once and stay after ROLLBACK; releases wait for the commit', () => {
  const pins = new SessionPins();
  pins.note(pinEffects('LISTEN a'));
  pins.settle(true);
  pins.note(pinEffects('BEGIN'));
  pins.note(pinEffects('UNLISTEN *'));
  assert.deepEqual(pins.held(), ['listen'], 'not released before the commit');
  pins.note(pinEffects('SELECT pg_advisory_lock(1)'));
  assert.deepEqual(pins.held(), ['advisory', 'listen'], 'held while the transaction is open');
  pins.settle(false);
  assert.deepEqual(pins.held(), ['advisory', 'listen'], 'rolled back: the release did not happen');
  pins.note(pinEffects('UNLISTEN *; SELECT pg_advisory_unlock_all()'));
  pins.settle(true);
  assert.deepEqual(pins.held(), []);
  pins.note(pinEffects('CREATE TEMP TABLE t (a int)'));
  pins.settle(false);
  assert.deepEqual(pins.held(), ['temp'], 'a failed or rolled back creation still pins (unsure = pinned)');
});

test('the FATAL message names the state and says to reconnect', () => {
  const { message } = pinnedSessionLost(['temp', 'listen']);
  assert.match(message, /temporary tables, LISTEN registrations/);
  assert.match(message, /reconnect/);
  assert.throws(() => pinnedSessionLost([]));
});
