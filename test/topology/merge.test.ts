import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { ClusterView } from '../../src/cluster/view.ts';
import { mergeView } from '../../src/topology/merge.ts';
import {
  decodeTopologyMessage,
  encodeTopologyMessage,
  viewFromClusterResponse,
  viewFromJson,
  viewToJson,
} from '../../src/topology/wire.ts';

const view = (term: number, primary: string | null, lagBytes = 0): ClusterView => ({
  term,
  primary,
  promotedAtLsn: primary === null ? null : BigInt(term) * 1000n,
  members: [
    {
      name: 'a',
      role: primary === 'a' ? 'primary' : 'backup',
      postgres: { host: '127.0.0.1', port: 5001 },
      lsn: 5n,
      lagBytes,
      healthy: true,
    },
    {
      name: 'b',
      role: primary === 'b' ? 'primary' : 'backup',
      postgres: { host: '127.0.0.1', port: 5002 },
      lsn: 4n,
      lagBytes,
      healthy: true,
    },
  ],
});

test('a newer term replaces the view; an older term never changes routing', () => {
  assert.deepEqual(mergeView(view(3, 'a'), view(4, 'b')), { view: view(4, 'b'), outcome: 'newer-term' });
  assert.deepEqual(mergeView(view(4, 'b'), view(3, 'a')), { view: view(4, 'b'), outcome: 'stale' });
  assert.deepEqual(mergeView(null, view(1, 'a')).outcome, 'newer-term');
});

test('within a term the primary, once known, never changes; other fields update', () => {
  assert.equal(mergeView(view(4, null), view(4, 'b')).outcome, 'same-term-update');
  assert.deepEqual(mergeView(view(4, 'b'), view(4, 'a')), { view: view(4, 'b'), outcome: 'conflict' });
  assert.deepEqual(mergeView(view(4, 'b'), view(4, null)), { view: view(4, 'b'), outcome: 'stale' });
  assert.equal(mergeView(view(4, 'b'), view(4, 'b')).outcome, 'unchanged');
  const lagged = mergeView(view(4, 'b'), view(4, 'b', 100));
  assert.equal(lagged.outcome, 'same-term-update');
  assert.equal(lagged.view.members[0]!.lagBytes, 100);
});

test('property: whatever order views arrive in, routing follows the highest term and its first known primary', () => {
  const arbView = fc
    .record({ term: fc.integer({ min: 1, max: 6 }), primary: fc.constantFrom('a', 'b', null) })
    .map(({ term, primary }) => view(term, primary));
  fc.assert(
    fc.property(fc.array(arbView, { minLength: 1, maxLength: 30 }), (views) => {
      let merged: ClusterView | null = null;
      for (const v of views) merged = mergeView(merged, v).view;
      const maxTerm = Math.max(...views.map((v) => v.term));
      const firstPrimary = views.find((v) => v.term === maxTerm && v.primary !== null)?.primary ?? null;
      assert.equal(merged!.term, maxTerm);
      assert.equal(merged!.primary, firstPrimary);
    }),
    { seed: Number(process.env.PGWARD_SEED ?? 8), verbose: true },
  );
});

test('views survive the JSON wire format, bigint LSNs included', () => {
  const v = view(7, 'a');
  v.members[0]!.lsn = 2n ** 63n - 1n;
  assert.deepEqual(viewFromJson(JSON.parse(JSON.stringify(viewToJson(v)))), v);
  const text = encodeTopologyMessage({ cluster: 'c', from: 'a', view: v });
  assert.deepEqual(decodeTopologyMessage(text), { cluster: 'c', from: 'a', view: v });
});

test('malformed topology messages are rejected with a reason', () => {
  assert.throws(() => decodeTopologyMessage('not json'));
  assert.throws(() =>
    decodeTopologyMessage(JSON.stringify({ v: 2, cluster: 'c', from: 'a', view: viewToJson(view(1, 'a')) })),
  );
  assert.throws(
    () => viewFromJson({ ...viewToJson(view(1, 'a')), promotedAtLsn: '0/16B3748' }),
    /LSN as a decimal string/,
  );
});

test('the view is read from a GET /cluster answer: its view field, or the status nodes', () => {
  const v = view(7, 'a');
  assert.deepEqual(viewFromClusterResponse({ cluster: 'x', view: viewToJson(v) }), v);
  const fromStatus = viewFromClusterResponse({
    cluster: 'x',
    term: 7,
    primary: 'a',
    nodes: [
      {
        name: 'a',
        role: 'primary',
        postgres: { host: 'h', port: 1, currentLsn: '0/10', replayLsn: null, lagBytes: null },
      },
      { name: 'w', role: 'witness', postgres: null },
    ],
  });
  assert.deepEqual(fromStatus.members, [
    { name: 'a', role: 'primary', postgres: { host: 'h', port: 1 }, lsn: 16n, lagBytes: null, healthy: true },
    { name: 'w', role: 'witness', postgres: null, lsn: null, lagBytes: null, healthy: true },
  ]);
  assert.throws(() => viewFromClusterResponse({ nope: 1 }));
});
