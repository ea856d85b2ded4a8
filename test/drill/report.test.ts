import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkHistory } from '../../src/drill/checker.ts';
import type { HistoryEvent } from '../../src/drill/history.ts';
import { renderReport, timelineBuckets } from '../../src/drill/report.ts';

function sampleHistory(): HistoryEvent[] {
  const events: HistoryEvent[] = [];
  for (let i = 0; i < 100; i++) {
    const atMs = i * 20;
    const term = atMs < 1000 ? 1 : 2;
    events.push({ type: 'invoke', opId: `w${i}`, client: i % 4, attempt: 1, atMs, keyed: false });
    if (i === 50) {
      events.push({
        type: 'unknown',
        opId: `w${i}`,
        client: 2,
        attempt: 1,
        atMs: atMs + 5,
        sqlstate: '08007',
        message: 'gone',
      });
    } else {
      events.push({ type: 'ok', opId: `w${i}`, client: i % 4, attempt: 1, atMs: atMs + 5, term });
    }
  }
  events.push({ type: 'fault', round: 1, name: 'kill-<postgres>', atMs: 990, expectsNewTerm: true });
  return events.sort((a, b) => a.atMs - b.atMs);
}

test('timeline buckets count acknowledgements, errors, latency and the term of each bucket', () => {
  const { bucketMs, buckets } = timelineBuckets(sampleHistory());
  assert.equal(bucketMs, 10);
  const acked = buckets.reduce((n, b) => n + b.acknowledged, 0);
  const errors = buckets.reduce((n, b) => n + b.errors, 0);
  assert.equal(acked, 99);
  assert.equal(errors, 1);
  assert.equal(Math.max(...buckets.map((b) => b.maxLatencyMs ?? 0)), 5);
  assert.deepEqual([...new Set(buckets.map((b) => b.term).filter((t) => t !== null))], [1, 2]);
});

test('timeline buckets stay bounded for long histories', () => {
  const events: HistoryEvent[] = [
    { type: 'invoke', opId: 'a', client: 0, attempt: 1, atMs: 0, keyed: false },
    { type: 'ok', opId: 'a', client: 0, attempt: 1, atMs: 3_600_000, term: 1 },
  ];
  assert.ok(timelineBuckets(events).buckets.length <= 400);
});

test('the report is one self-contained HTML file with an SVG timeline, fault markers and escaped text', () => {
  const events = sampleHistory();
  const result = checkHistory(
    events,
    events.filter((e) => e.type === 'ok').map((e) => ({ opId: (e as { opId: string }).opId, terms: [1] })),
  );
  const html = renderReport({
    title: 'drill',
    scenario: 'kill-postgres',
    startedAt: new Date(0),
    events,
    result,
  });
  assert.match(html, /^<!doctype html>/);
  assert.match(html, /<svg [^>]*>[\s\S]*<\/svg>/);
  assert.match(html, /term 1[\s\S]*term 2/);
  assert.match(html, /kill-&#60;postgres&#62; #1/);
  assert.doesNotMatch(html, /kill-<postgres>/);
  assert.match(html, /PASS/);
  assert.match(html, /<td>08007<\/td><td>1<\/td>/);
  // Self-contained: no external scripts, stylesheets or images.
  assert.doesNotMatch(html, /<script[^>]*src=|<link |<img /);
});
