// SET/RESET tracking and the SQL that re-applies a client's settings on another backend.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  closeTarget,
  parseSettingChange,
  parseStatementName,
  Settings,
} from '../../src/proxy/session-state.ts';
import { buildClose, buildParse } from '../../src/wire/frontend.ts';
import { TargetKind } from '../../src/wire/protocol.ts';

test('recognizes session-level SET and RESET, not SET LOCAL, SET TRANSACTION or multi-statement text', () => {
  assert.deepEqual(parseSettingChange('SET search_path = app, public'), {
    kind: 'set',
    name: 'search_path',
    valueSql: 'app, public',
  });
  assert.deepEqual(parseSettingChange("set session statement_timeout to '5s';"), {
    kind: 'set',
    name: 'statement_timeout',
    valueSql: "'5s'",
  });
  assert.deepEqual(parseSettingChange("SET TIME ZONE 'UTC'"), {
    kind: 'set',
    name: 'timezone',
    valueSql: "'UTC'",
  });
  assert.deepEqual(parseSettingChange('RESET work_mem'), { kind: 'reset', name: 'work_mem' });
  assert.deepEqual(parseSettingChange('reset all'), { kind: 'reset-all' });
  assert.equal(parseSettingChange('SET LOCAL work_mem = 1'), null);
  assert.equal(parseSettingChange('SET TRANSACTION ISOLATION LEVEL SERIALIZABLE'), null);
  assert.equal(parseSettingChange('SET a = 1; DROP TABLE x'), null);
  assert.equal(parseSettingChange('SELECT 1'), null);
});

test('settings diff: SET what differs, RESET what the backend has extra; RESET restores startup values', () => {
  const startup = Settings.fromStartup(
    new Map([
      ['user', 'u'],
      ['database', 'd'],
      ['application_name', "it's"],
    ]),
  );
  assert.deepEqual([...startup.values], [['application_name', "'it''s'"]]);
  const client = Settings.fromStartup(new Map([['application_name', "it's"]]));
  client.apply({ kind: 'set', name: 'search_path', valueSql: 'app' }, startup);
  const backend = new Map([
    ['work_mem', "'4MB'"],
    ['application_name', "'it''s'"],
  ]);
  assert.equal(client.diffFrom(backend), 'SET "search_path" = app; RESET "work_mem"');
  client.apply({ kind: 'set', name: 'application_name', valueSql: "'x'" }, startup);
  client.apply({ kind: 'reset', name: 'application_name' }, startup);
  assert.equal(client.values.get('application_name'), "'it''s'");
  client.apply({ kind: 'reset-all' }, startup);
  assert.deepEqual([...client.values], [...startup.values]);
});

test('statement names of Parse and Close messages', () => {
  assert.equal(parseStatementName(buildParse({ statement: 's1', sql: 'SELECT 1', paramTypes: [] })), 's1');
  assert.equal(parseStatementName(buildParse({ statement: '', sql: 'SELECT 1', paramTypes: [] })), '');
  assert.deepEqual(closeTarget(buildClose(TargetKind.Statement, 'x')), {
    kind: TargetKind.Statement,
    name: 'x',
  });
  assert.equal(closeTarget(Buffer.from([0x43, 0, 0, 0, 4])), null);
});
