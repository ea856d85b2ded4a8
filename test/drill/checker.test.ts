import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkHistory, formatCheckResult } from '../../src/drill/checker.ts';
import type { HistoryEvent, StoredWrite } from '../../src/drill/history.ts';

/** Builds a history of single-attempt writes: [opId, invokeAtMs, outcome, outcomeAtMs, term|sqlstate]. */
function history(
  rows: Array<[string, number, 'ok' | 'fail' | 'unknown' | 'none', number, (number | string | null)?]>,
  faults: HistoryEvent[] = [],
): HistoryEvent[] {
  const events: HistoryEvent[] = [...faults];
  for (const [opId, invokeAtMs, outcome, atMs, extra] of rows) {
    events.push({ type: 'invoke', opId, client: 0, attempt: 1, atMs: invokeAtMs, keyed: false });
    if (outcome === 'ok') {
      events.push({ type: 'ok', opId, client: 0, attempt: 1, atMs, term: (extra as number | null) ?? null });
    } else if (outcome === 'fail') {
      events.push({ type: 'fail', opId, client: 0, attempt: 1, atMs, sqlstate: String(extra), message: 'x' });
    } else if (outcome === 'unknown') {
      const sqlstate = (extra as string | undefined) ?? null;
      events.push({ type: 'unknown', opId, client: 0, attempt: 1, atMs, sqlstate, message: 'x' });
    }
  }
  return events.sort((a, b) => a.atMs - b.atMs);
}

const stored = (...ids: Array<[string, number]>): StoredWrite[] =>
  ids.map(([opId, copies]) => ({ opId, terms: Array.from({ length: copies }, () => 1) }));

test('a clean history with a failover passes and measures RTO from the fault to the first write of the new term', () => {
  const events = history(
    [
      ['a', 0, 'ok', 5, 1],
      ['b', 10, 'ok', 15, 1],
      ['c', 20, 'unknown', 120, '08006'],
      ['d', 30, 'ok', 900, 2],
      ['e', 950, 'ok', 960, 2],
    ],
    [{ type: 'fault', round: 1, name: 'kill-postgres', atMs: 18, expectsNewTerm: true }],
  );
  const result = checkHistory(events, stored(['a', 1], ['b', 1], ['d', 1], ['e', 1]));
  assert.equal(result.ok, true, formatCheckResult(result));
  assert.equal(result.acknowledged, 4);
  assert.equal(result.unknown, 1);
  assert.deepEqual(result.rounds, [
    { round: 1, fault: 'kill-postgres', faultAtMs: 18, rtoMs: 882, termBefore: 1, termAfter: 2, errors: 1 },
  ]);
  assert.deepEqual(result.errorsBySqlstate, { '08006': 1 });
});

test('an unknown outcome may or may not be stored: both are fine', () => {
  const events = history([
    ['a', 0, 'unknown', 5, null],
    ['b', 0, 'unknown', 5, '08007'],
  ]);
  assert.equal(checkHistory(events, stored(['a', 1])).ok, true);
  assert.equal(checkHistory(events, stored()).ok, true);
  assert.deepEqual(checkHistory(events, []).errorsBySqlstate, { none: 1, '08007': 1 });
});

test('an acknowledged write missing from the final primary is a lost write', () => {
  const result = checkHistory(
    history([
      ['a', 0, 'ok', 5, 1],
      ['b', 6, 'ok', 9, 1],
    ]),
    stored(['a', 1]),
  );
  assert.equal(result.ok, false);
  assert.deepEqual(
    result.violations.map((v) => [v.kind, v.opId]),
    [['lost', 'b']],
  );
  assert.match(
    formatCheckResult(result),
    /FAIL: 1 violation\(s\)\n {2}lost: acknowledged write b is missing/,
  );
});

test('a write stored twice is a duplicate, acknowledged or not', () => {
  const result = checkHistory(
    history([
      ['a', 0, 'ok', 5, 1],
      ['b', 0, 'unknown', 5],
    ]),
    stored(['a', 2], ['b', 3]),
  );
  assert.deepEqual(
    result.violations.map((v) => [v.kind, v.opId]),
    [
      ['duplicate', 'a'],
      ['duplicate', 'b'],
    ],
  );
});

test('a write the client was told definitely failed must not be stored', () => {
  const result = checkHistory(history([['a', 0, 'fail', 5, '40001']]), stored(['a', 1]));
  assert.deepEqual(
    result.violations.map((v) => v.kind),
    ['failed-applied'],
  );
  assert.equal(checkHistory(history([['a', 0, 'fail', 5, '40001']]), stored()).ok, true);
});

test('a retried keyed write counts once: a failed attempt and an acknowledged retry are not a violation', () => {
  const events: HistoryEvent[] = [
    { type: 'invoke', opId: 'k', client: 0, attempt: 1, atMs: 0, keyed: true },
    { type: 'fail', opId: 'k', client: 0, attempt: 1, atMs: 5, sqlstate: '40001', message: 'retry' },
    { type: 'invoke', opId: 'k', client: 0, attempt: 2, atMs: 6, keyed: true },
    { type: 'ok', opId: 'k', client: 0, attempt: 2, atMs: 9, term: 2 },
  ];
  const result = checkHistory(events, stored(['k', 1]));
  assert.equal(result.ok, true, formatCheckResult(result));
  assert.equal(result.acknowledged, 1);
});

test('an old-term acknowledgement of a write invoked after a newer term acknowledged one means two primaries', () => {
  const events = history([
    ['a', 0, 'ok', 5, 1],
    ['b', 10, 'ok', 20, 2],
    // Invoked at 25, after b was acknowledged in term 2, and still served by term 1.
    ['c', 25, 'ok', 30, 1],
  ]);
  const result = checkHistory(events, stored(['a', 1], ['b', 1], ['c', 1]));
  assert.deepEqual(
    result.violations.map((v) => [v.kind, v.opId]),
    [['two-primaries', 'c']],
  );
  assert.match(
    result.violations[0]!.detail,
    /acknowledged in term 1 after write b was acknowledged in term 2/,
  );
});

test('old-term acknowledgements concurrent with the new term are not two primaries', () => {
  // c was invoked before b (term 2) was acknowledged, so its term-1 commit may have happened first.
  const events = history([
    ['b', 10, 'ok', 20, 2],
    ['c', 15, 'ok', 30, 1],
  ]);
  assert.equal(checkHistory(events, stored(['b', 1], ['c', 1])).ok, true);
});

test('a stored write nobody sent is a phantom', () => {
  const result = checkHistory(history([['a', 0, 'ok', 5, 1]]), stored(['a', 1], ['zz', 1]));
  assert.deepEqual(
    result.violations.map((v) => [v.kind, v.opId]),
    [['phantom', 'zz']],
  );
});

test('a round with no successful write after its fault is a no-recovery violation', () => {
  const events = history(
    [
      ['a', 0, 'ok', 5, 1],
      ['b', 10, 'fail', 10_000, '57P03'],
    ],
    [
      { type: 'fault', round: 1, name: 'kill-node', atMs: 8, expectsNewTerm: true },
      { type: 'heal', round: 1, name: 'kill-node', atMs: 9000 },
    ],
  );
  const result = checkHistory(events, stored(['a', 1]));
  assert.deepEqual(
    result.violations.map((v) => [v.kind, v.round]),
    [['no-recovery', 1]],
  );
  assert.equal(result.rounds[0]!.rtoMs, null);
  assert.match(formatCheckResult(result), /never/);
});

test('a same-term acknowledgement after a fault that expects a new term does not count as recovery', () => {
  const events = history(
    [
      ['a', 0, 'ok', 5, 1],
      ['b', 6, 'ok', 12, 1],
      ['c', 13, 'ok', 700, 2],
    ],
    [{ type: 'fault', round: 1, name: 'kill-postgres', atMs: 10, expectsNewTerm: true }],
  );
  const result = checkHistory(events, stored(['a', 1], ['b', 1], ['c', 1]));
  assert.equal(result.rounds[0]!.rtoMs, 690);
});

test('a fault that expects no failover recovers on the first acknowledgement after it', () => {
  const events = history(
    [
      ['a', 0, 'ok', 5, 1],
      ['b', 6, 'ok', 40, 1],
    ],
    [{ type: 'fault', round: 1, name: 'kill-backup', atMs: 10, expectsNewTerm: false }],
  );
  assert.equal(checkHistory(events, stored(['a', 1], ['b', 1])).rounds[0]!.rtoMs, 30);
});

test('an attempt that never got an answer counts as unknown, not as failed', () => {
  const events: HistoryEvent[] = [
    { type: 'invoke', opId: 'a', client: 0, attempt: 1, atMs: 0, keyed: false },
  ];
  const result = checkHistory(events, stored(['a', 1]));
  assert.equal(result.ok, true);
  assert.equal(result.unknown, 1);
});

test('violations beyond the listing cap are counted, and still fail the check', () => {
  const rows = Array.from(
    { length: 10 },
    (_, i) => [`w${i}`, i, 'ok', i + 1, 1] as [string, number, 'ok', number, number],
  );
  const result = checkHistory(history(rows), [], { maxListedViolations: 3 });
  assert.equal(result.violations.length, 3);
  assert.equal(result.unlistedViolations, 7);
  assert.equal(result.ok, false);
  assert.match(formatCheckResult(result), /FAIL: 10 violation\(s\)[\s\S]*and 7 more/);
});

test('without the final rows nothing is claimed lost, and the result says it was not verified', () => {
  const result = checkHistory(history([['a', 0, 'ok', 5, 1]]), null);
  assert.equal(result.verified, false);
  assert.equal(result.ok, false);
  assert.deepEqual(result.violations, []);
  assert.match(formatCheckResult(result), /NOT VERIFIED/);
});
