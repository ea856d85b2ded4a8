import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  type Facts,
  type InFlight,
  resolve,
  type Step,
  type XactStatus,
} from '../../src/exactly-once/outcome.ts';
import { respond, SQLSTATE } from '../../src/exactly-once/response.ts';

const fence = (xid: bigint | null, insertLsn: bigint) => ({ xid, insertLsn });
const unkeyed = (f = fence(100n, 1000n)): InFlight => ({ stage: 'commit-sent', fence: f, keyed: false });
const failedOver = (s: bigint, extra: Partial<Facts> = {}): Facts => ({
  samePrimary: false,
  promotedAtLsn: s,
  ...extra,
});
const verdictOf = (step: Step) => (step.kind === 'verdict' ? step.verdict : `ask:${step.question}`);

test('reference §5.1: nothing that commits was sent → not committed', () => {
  assert.equal(
    verdictOf(resolve({ stage: 'before-commit', fence: null, keyed: false }, failedOver(0n))),
    'not-committed',
  );
});

test('reference §5.1.1: xid NULL → the transaction wrote nothing', () => {
  assert.equal(verdictOf(resolve(unkeyed(fence(null, 5n)), failedOver(0n))), 'committed');
});

test('reference §5.1.3: after failover, L > S → not committed without asking (xid reuse trap)', () => {
  assert.equal(verdictOf(resolve(unkeyed(fence(100n, 1001n)), failedOver(1000n))), 'not-committed');
});

test('reference §5.1.3: after failover, L ≤ S → pg_xact_status on the new primary decides', () => {
  const flight = unkeyed(fence(100n, 1000n));
  assert.equal(verdictOf(resolve(flight, failedOver(1000n))), 'ask:xact-status');
  const cases: Array<[XactStatus, string]> = [
    ['committed', 'committed'],
    ['aborted', 'not-committed'],
    ['in progress', 'unknown'],
    [null, 'unknown'],
  ];
  for (const [status, expected] of cases) {
    assert.equal(verdictOf(resolve(flight, failedOver(1000n, { xactStatus: status }))), expected);
  }
});

test('failover without a known S is undeterminable', () => {
  assert.equal(verdictOf(resolve(unkeyed(), { samePrimary: false, promotedAtLsn: null })), 'unknown');
});

test('reference §5.1.2: same primary, in progress → terminate the old backend, then ask again', () => {
  const flight = unkeyed();
  assert.equal(verdictOf(resolve(flight, { samePrimary: true, promotedAtLsn: null })), 'ask:xact-status');
  const facts = { samePrimary: true, promotedAtLsn: null, xactStatus: 'in progress' as const };
  assert.equal(verdictOf(resolve(flight, facts)), 'ask:terminate-old-backend');
  const after = { samePrimary: true, promotedAtLsn: null, oldBackendTerminated: true };
  assert.equal(verdictOf(resolve(flight, after)), 'ask:xact-status');
  assert.equal(verdictOf(resolve(flight, { ...after, xactStatus: 'committed' })), 'ask:sync-flushed');
  assert.equal(verdictOf(resolve(flight, { ...after, xactStatus: 'aborted' })), 'not-committed');
});

test('reference §5.1.2: same primary, committed → acknowledged only once the synchronous standbys flushed it', () => {
  const same = { samePrimary: true, promotedAtLsn: null, xactStatus: 'committed' as const };
  assert.equal(verdictOf(resolve(unkeyed(), same)), 'ask:sync-flushed');
  assert.equal(verdictOf(resolve(unkeyed(), { ...same, syncFlushed: true })), 'committed');
  assert.equal(verdictOf(resolve(unkeyed(), { ...same, syncFlushed: false })), 'unknown');
  const keyed: InFlight = { stage: 'commit-sent', fence: null, keyed: true };
  const keyedSame = {
    samePrimary: true,
    promotedAtLsn: null,
    oldBackendTerminated: true,
    keyRow: 'present' as const,
  };
  assert.equal(verdictOf(resolve(keyed, keyedSame)), 'ask:sync-flushed');
  assert.equal(verdictOf(resolve(keyed, { ...keyedSame, syncFlushed: true })), 'committed');
  assert.equal(verdictOf(resolve(keyed, { ...keyedSame, syncFlushed: false })), 'unknown');
  // After a failover the promoted backup replayed the commit: no wait.
  assert.equal(
    verdictOf(resolve(unkeyed(fence(100n, 10n)), failedOver(10n, { xactStatus: 'committed' }))),
    'committed',
  );
  // A transaction that wrote nothing has nothing to replicate.
  assert.equal(
    verdictOf(resolve(unkeyed(fence(null, 10n)), { samePrimary: true, promotedAtLsn: null })),
    'committed',
  );
});

test('unfenced commits are undeterminable; keyed ones are decided by the key row', () => {
  assert.equal(
    verdictOf(resolve({ stage: 'unfenced', fence: null, keyed: false }, failedOver(9n))),
    'unknown',
  );
  const keyed: InFlight = { stage: 'commit-sent', fence: null, keyed: true };
  assert.equal(verdictOf(resolve(keyed, failedOver(9n))), 'ask:key-row');
  assert.equal(verdictOf(resolve(keyed, failedOver(9n, { keyRow: 'present' }))), 'committed');
  assert.equal(verdictOf(resolve(keyed, failedOver(9n, { keyRow: 'absent' }))), 'not-committed');
  assert.equal(
    verdictOf(resolve(keyed, { samePrimary: true, promotedAtLsn: null })),
    'ask:terminate-old-backend',
  );
});

test('property: the resolver always ends in a verdict when every question is answered', () => {
  const arbFlight = fc.record({
    stage: fc.constantFrom('before-commit', 'commit-sent', 'unfenced'),
    fence: fc.option(
      fc.record({ xid: fc.option(fc.bigInt(1n, 1000n), { nil: null }), insertLsn: fc.bigInt(0n, 100n) }),
      {
        nil: null,
      },
    ),
    keyed: fc.boolean(),
  }) as fc.Arbitrary<InFlight>;
  const arbStatus = fc.constantFrom<XactStatus>('committed', 'aborted', 'in progress', null);
  fc.assert(
    fc.property(
      arbFlight,
      fc.boolean(),
      fc.option(fc.bigInt(0n, 100n), { nil: null }),
      arbStatus,
      arbStatus,
      fc.boolean(),
      fc.boolean(),
      (flight, same, s, before, after, keyPresent, flushed) => {
        const facts: Facts = { samePrimary: same, promotedAtLsn: s };
        for (let steps = 0; steps < 7; steps++) {
          const step = resolve(flight, facts);
          if (step.kind === 'verdict') {
            // On the same primary a commit that wrote is acknowledged only after the sync standbys flushed it.
            if (same && step.verdict === 'committed' && (flight.keyed || flight.fence?.xid != null)) {
              assert.equal(facts.syncFlushed, true);
            }
            // A failover that put the commit record after S can never be reported committed.
            if (
              !same &&
              !flight.keyed &&
              flight.fence?.xid != null &&
              s !== null &&
              flight.fence.insertLsn > s
            ) {
              assert.notEqual(step.verdict, 'committed');
            }
            return;
          }
          if (step.question === 'xact-status') facts.xactStatus = facts.oldBackendTerminated ? after : before;
          else if (step.question === 'terminate-old-backend') {
            facts.oldBackendTerminated = true;
            delete facts.xactStatus;
          } else if (step.question === 'sync-flushed') facts.syncFlushed = flushed;
          else facts.keyRow = keyPresent ? 'present' : 'absent';
        }
        assert.fail('the resolver asked more than 6 questions');
      },
    ),
  );
});

test('client responses follow the SQLSTATE contract', () => {
  assert.deepEqual(respond('committed', []), { kind: 'success' });
  const notCommitted = respond('not-committed', []);
  assert.equal(notCommitted.kind === 'error' && notCommitted.error.code, SQLSTATE.serializationFailure);
  assert.equal(notCommitted.kind === 'error' && notCommitted.error.severity, 'ERROR');
  const unknown = respond('unknown', []);
  assert.equal(unknown.kind === 'error' && unknown.error.code, '08007');
  assert.equal(unknown.kind === 'error' && unknown.error.severity, 'FATAL');
  const pinned = ['temp'] as const;
  const stuck = respond('not-committed', pinned);
  assert.equal(stuck.kind === 'error' && stuck.error.code, '57P01');
  const committedStuck = respond('committed', pinned);
  assert.equal(committedStuck.kind === 'success' && committedStuck.thenClose?.code, '57P01');
});
