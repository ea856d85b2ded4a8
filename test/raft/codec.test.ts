import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  CodecError,
  decodeEntries,
  decodeHardState,
  decodeMessage,
  decodeSnapshot,
  encodeEntries,
  encodeHardState,
  encodeMessage,
  encodeSnapshot,
} from '../../src/raft/codec.ts';
import type { ConfState, Entry, HardState, Message, Snapshot } from '../../src/raft/core/types.ts';

const seed = Number(process.env.FC_SEED ?? Date.now() % 2 ** 31);
const params = { seed, numRuns: 300 };
console.log(`# codec property seed ${seed} (replay: FC_SEED=${seed})`);

// Decoded objects have Object.prototype; fast-check may build null-prototype ones.
const record = <T>(shape: { [K in keyof T]: fc.Arbitrary<T[K]> }) =>
  fc.record(shape, { noNullPrototype: true });
const nat = fc.nat({ max: Number.MAX_SAFE_INTEGER });
const nodeId = fc.string({ maxLength: 12 });
const bytes = fc.uint8Array({ maxLength: 64 });
const entry: fc.Arbitrary<Entry> = record({
  index: nat,
  term: nat,
  type: fc.constantFrom('normal' as const, 'confChange' as const, 'noop' as const),
  data: bytes,
});
const confState: fc.Arbitrary<ConfState> = record({
  voters: fc.array(nodeId, { maxLength: 5 }),
  witnesses: fc.array(nodeId, { maxLength: 3 }),
  learners: fc.array(nodeId, { maxLength: 3 }),
});
const snapshot: fc.Arbitrary<Snapshot> = record({
  metadata: record({ index: nat, term: nat, confState }),
  data: bytes,
});
const hardState: fc.Arbitrary<HardState> = record({ term: nat, vote: nodeId, commit: nat });
const base = { from: nodeId, to: nodeId, term: nat };
const fitness = fc.bigInt({ min: -(2n ** 64n) + 1n, max: 2n ** 64n - 1n });
const message: fc.Arbitrary<Message> = fc.oneof(
  record({
    ...base,
    type: fc.constant('app' as const),
    index: nat,
    logTerm: nat,
    entries: fc.array(entry, { maxLength: 4 }),
    commit: nat,
  }),
  record({
    ...base,
    type: fc.constant('appResp' as const),
    index: nat,
    reject: fc.boolean(),
    rejectHint: nat,
  }),
  record({
    ...base,
    type: fc.constantFrom('vote' as const, 'preVote' as const),
    index: nat,
    logTerm: nat,
    fitness,
    transfer: fc.boolean(),
  }),
  record({
    ...base,
    type: fc.constantFrom('voteResp' as const, 'preVoteResp' as const),
    reject: fc.boolean(),
  }),
  record({ ...base, type: fc.constant('heartbeat' as const), commit: nat, round: nat }),
  record({ ...base, type: fc.constant('heartbeatResp' as const), round: nat }),
  record({ ...base, type: fc.constant('snap' as const), snapshot }),
  record({ ...base, type: fc.constant('timeoutNow' as const) }),
);

test('every message round-trips', () => {
  fc.assert(
    fc.property(message, (m) => assert.deepStrictEqual(decodeMessage(encodeMessage(m)), m)),
    params,
  );
});

test('entries, hard state and snapshots round-trip', () => {
  fc.assert(
    fc.property(fc.array(entry, { maxLength: 8 }), hardState, snapshot, (es, h, s) => {
      assert.deepStrictEqual(decodeEntries(encodeEntries(es)), es);
      assert.deepStrictEqual(decodeHardState(encodeHardState(h)), h);
      assert.deepStrictEqual(decodeSnapshot(encodeSnapshot(s)), s);
    }),
    params,
  );
});

test('every strict prefix of an encoding is rejected with a CodecError, never misread', () => {
  fc.assert(
    fc.property(message, (m) => {
      const encoded = encodeMessage(m);
      for (let cut = 0; cut < encoded.length; cut++) {
        assert.throws(() => decodeMessage(encoded.subarray(0, cut)), CodecError);
      }
    }),
    { ...params, numRuns: 100 },
  );
});

test('trailing bytes and unknown type codes are rejected', () => {
  const encoded = encodeMessage({ type: 'timeoutNow', from: 'a', to: 'b', term: 3 });
  assert.throws(() => decodeMessage(Buffer.concat([encoded, Buffer.of(0)])), /trailing bytes/);
  assert.throws(
    () => decodeMessage(Buffer.concat([Buffer.of(200), encoded.subarray(1)])),
    /unknown message type/,
  );
});

test('values the format cannot carry are refused at encode time', () => {
  assert.throws(() => encodeHardState({ term: -1, vote: '', commit: 0 }), CodecError);
  assert.throws(() => encodeHardState({ term: 1.5, vote: '', commit: 0 }), CodecError);
});
