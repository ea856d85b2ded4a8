// The drill report: one self-contained HTML file (no external assets) with an
// inline SVG timeline of throughput, errors, latency, faults and terms.
import type { CheckResult } from './checker.ts';
import type { HistoryEvent } from './history.ts';

export interface ReportInput {
  title: string;
  scenario: string;
  startedAt: Date;
  events: readonly HistoryEvent[];
  result: CheckResult;
}

export interface TimelineBucket {
  startMs: number;
  acknowledged: number;
  errors: number;
  /** Highest latency of an attempt completed in the bucket, in ms; null when none completed. */
  maxLatencyMs: number | null;
  /** Highest term among acknowledgements in the bucket. */
  term: number | null;
}

const MAX_BUCKETS = 400;

/** Splits the history into equal buckets (at most MAX_BUCKETS, at least 10 ms wide). */
export function timelineBuckets(events: readonly HistoryEvent[]): {
  bucketMs: number;
  buckets: TimelineBucket[];
} {
  if (events.length === 0) return { bucketMs: 100, buckets: [] };
  // reduce, not Math.min(...spread): histories can hold millions of events.
  const startMs = events.reduce((m, e) => Math.min(m, e.atMs), Number.POSITIVE_INFINITY);
  const endMs = events.reduce((m, e) => Math.max(m, e.atMs), Number.NEGATIVE_INFINITY);
  const bucketMs = Math.max(10, Math.ceil((endMs - startMs + 1) / MAX_BUCKETS));
  const count = Math.floor((endMs - startMs) / bucketMs) + 1;
  const buckets: TimelineBucket[] = Array.from({ length: count }, (_, i) => ({
    startMs: startMs + i * bucketMs,
    acknowledged: 0,
    errors: 0,
    maxLatencyMs: null,
    term: null,
  }));
  const invokes = new Map<string, number>();
  for (const e of events) {
    if (e.type === 'fault' || e.type === 'heal') continue;
    const key = `${e.opId}#${e.attempt}`;
    if (e.type === 'invoke') {
      invokes.set(key, e.atMs);
      continue;
    }
    const bucket = buckets[Math.floor((e.atMs - startMs) / bucketMs)]!;
    const invokedAtMs = invokes.get(key);
    if (invokedAtMs !== undefined) {
      bucket.maxLatencyMs = Math.max(bucket.maxLatencyMs ?? 0, e.atMs - invokedAtMs);
    }
    if (e.type === 'ok') {
      bucket.acknowledged += 1;
      if (e.term !== null) bucket.term = Math.max(bucket.term ?? e.term, e.term);
    } else {
      bucket.errors += 1;
    }
  }
  return { bucketMs, buckets };
}

const TERM_COLORS = ['#e8f0fe', '#fdeee0', '#e6f4ea', '#fce8f3', '#fff8d6', '#e8eaf6'];

export function timelineSvg(events: readonly HistoryEvent[]): string {
  const { bucketMs, buckets } = timelineBuckets(events);
  const width = 960;
  const laneHeight = 110;
  const left = 60;
  const plotWidth = width - left - 10;
  const height = laneHeight * 3 + 40;
  if (buckets.length === 0) {
    return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="40"><text x="10" y="25">empty history</text></svg>`;
  }
  const t0 = buckets[0]!.startMs;
  const spanMs = buckets.length * bucketMs;
  const x = (ms: number) => left + ((ms - t0) / spanMs) * plotWidth;
  const barWidth = Math.max(1, plotWidth / buckets.length);
  const perSecond = 1000 / bucketMs;
  const maxTput = buckets.reduce((m, b) => Math.max(m, b.acknowledged * perSecond), 1);
  const maxErr = buckets.reduce((m, b) => Math.max(m, b.errors), 1);
  const maxLat = buckets.reduce((m, b) => Math.max(m, b.maxLatencyMs ?? 0), 1);
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
  );

  // Term bands behind every lane: the colour changes when acknowledgements come from a new term.
  let bandStart = 0;
  let bandTerm: number | null = null;
  const flush = (endIndex: number) => {
    if (bandTerm === null) return;
    const color = TERM_COLORS[bandTerm % TERM_COLORS.length];
    const bx = x(buckets[bandStart]!.startMs);
    const bw = x(t0 + endIndex * bucketMs) - bx;
    parts.push(`<rect x="${f(bx)}" y="0" width="${f(bw)}" height="${laneHeight * 3}" fill="${color}"/>`);
    parts.push(`<text x="${f(bx + 3)}" y="${laneHeight * 3 + 14}" fill="#555">term ${bandTerm}</text>`);
  };
  buckets.forEach((b, i) => {
    if (b.term !== null && b.term !== bandTerm) {
      flush(i);
      bandStart = i;
      bandTerm = b.term;
    }
  });
  flush(buckets.length);

  const lane = (
    index: number,
    label: string,
    max: number,
    color: string,
    value: (b: TimelineBucket) => number,
  ) => {
    const top = index * laneHeight;
    parts.push(`<text x="4" y="${top + 14}" fill="#333">${label}</text>`);
    parts.push(`<text x="4" y="${top + 28}" fill="#777">max ${f(max)}</text>`);
    parts.push(
      `<line x1="${left}" y1="${top + laneHeight - 5}" x2="${width - 10}" y2="${top + laneHeight - 5}" stroke="#999"/>`,
    );
    buckets.forEach((b, i) => {
      const v = value(b);
      if (v <= 0) return;
      const h = (v / max) * (laneHeight - 25);
      parts.push(
        `<rect x="${f(left + i * barWidth)}" y="${f(top + laneHeight - 5 - h)}" width="${f(barWidth)}" height="${f(h)}" fill="${color}"/>`,
      );
    });
  };
  lane(0, 'writes/s', maxTput, '#1a73e8', (b) => b.acknowledged * perSecond);
  lane(1, 'errors', maxErr, '#d93025', (b) => b.errors);
  lane(2, 'latency ms', maxLat, '#188038', (b) => b.maxLatencyMs ?? 0);

  for (const e of events) {
    if (e.type !== 'fault' && e.type !== 'heal') continue;
    const ex = f(x(e.atMs));
    const color = e.type === 'fault' ? '#b00020' : '#00796b';
    parts.push(
      `<line x1="${ex}" y1="0" x2="${ex}" y2="${laneHeight * 3}" stroke="${color}" stroke-dasharray="4 3"><title>${escapeHtml(`${e.type} ${e.name} (round ${e.round})`)}</title></line>`,
    );
    if (e.type === 'fault')
      parts.push(
        `<text x="${ex}" y="${laneHeight * 3 + 28}" fill="${color}">${escapeHtml(e.name)} #${e.round}</text>`,
      );
  }
  parts.push(
    `<text x="${left}" y="${height - 2}" fill="#555">${f(spanMs / 1000)} s, ${bucketMs} ms per bar</text>`,
  );
  parts.push('</svg>');
  return parts.join('\n');
}

export function renderReport(input: ReportInput): string {
  const { result } = input;
  const verdict = !result.verified
    ? '<p class="fail">NOT VERIFIED: the final rows could not be read.</p>'
    : result.ok
      ? '<p class="pass">PASS: no acknowledged write lost, none applied twice, one primary at a time.</p>'
      : `<p class="fail">FAIL: ${result.violations.length + result.unlistedViolations} violation(s).</p>`;
  const rows = (cells: Array<Array<string | number>>) =>
    cells.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(String(c))}</td>`).join('')}</tr>`).join('\n');
  const rounds = rows(
    result.rounds.map((r) => [
      r.round,
      r.fault,
      r.rtoMs === null ? 'never' : Math.round(r.rtoMs),
      r.termBefore ?? '-',
      r.termAfter ?? '-',
      r.errors,
    ]),
  );
  const errors = rows(Object.entries(result.errorsBySqlstate).sort(([a], [b]) => a.localeCompare(b)));
  const violations = rows(
    result.violations.map((v) => [
      v.kind,
      v.opId ?? (v.round !== undefined ? `round ${v.round}` : ''),
      v.detail,
    ]),
  );
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(input.title)}</title>
<style>
body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0 16px}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}.pass{color:#188038;font-weight:bold}.fail{color:#d93025;font-weight:bold}
</style></head><body>
<h1>${escapeHtml(input.title)}</h1>
<p>Scenario <b>${escapeHtml(input.scenario)}</b>, started ${escapeHtml(input.startedAt.toISOString())}.</p>
${verdict}
<table><tr><th>operations</th><th>acknowledged</th><th>failed</th><th>unknown</th><th>stored rows</th></tr>
${rows([[result.operations, result.acknowledged, result.definitelyFailed, result.unknown, result.storedRows]])}</table>
<h2>Timeline</h2>
${timelineSvg(input.events)}
<h2>Rounds</h2>
<table><tr><th>round</th><th>fault</th><th>RTO ms</th><th>term before</th><th>term after</th><th>errors</th></tr>
${rounds}</table>
<h2>Client errors by SQLSTATE</h2>
<table><tr><th>SQLSTATE</th><th>count</th></tr>
${errors}</table>
<h2>Violations</h2>
<table><tr><th>kind</th><th>where</th><th>detail</th></tr>
${violations}</table>
${result.unlistedViolations > 0 ? `<p>... and ${result.unlistedViolations} more.</p>` : ''}
</body></html>
`;
}

function f(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
