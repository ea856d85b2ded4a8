// The drill checker: judges a history against what the final primary holds.
// Pure: the drill runner collects the history and the stored rows, this decides.
import type { FaultEvent, HistoryEvent, OperationEvent, StoredWrite } from './history.ts';

export type ViolationKind =
  /** The client was told its write committed, and the final primary does not hold it. */
  | 'lost'
  /** The final primary holds one write more than once. */
  | 'duplicate'
  /** Every attempt was told "definitely not committed", yet the write is there. */
  | 'failed-applied'
  /** A primary of an older term acknowledged a write after a newer term had acknowledged one. */
  | 'two-primaries'
  /** A stored row whose write id no client ever sent. */
  | 'phantom'
  /** No write succeeded between a fault and the end of its round. */
  | 'no-recovery';

export interface Violation {
  kind: ViolationKind;
  opId?: string;
  round?: number;
  detail: string;
}

export interface RoundResult {
  round: number;
  fault: string;
  faultAtMs: number;
  /** Fault to the first acknowledged write (of a newer term when the fault expects a failover); null if none. */
  rtoMs: number | null;
  termBefore: number | null;
  termAfter: number | null;
  errors: number;
}

export interface CheckResult {
  ok: boolean;
  /** False when the final rows could not be read: lost and duplicate writes were not checked. */
  verified: boolean;
  operations: number;
  acknowledged: number;
  definitelyFailed: number;
  unknown: number;
  storedRows: number;
  violations: Violation[];
  /** Violations beyond `maxListedViolations` are counted here, not listed. */
  unlistedViolations: number;
  rounds: RoundResult[];
  /** Client-visible errors by SQLSTATE ('none' when the connection broke without one). */
  errorsBySqlstate: Record<string, number>;
}

export interface CheckOptions {
  maxListedViolations?: number;
}

interface OpSummary {
  opId: string;
  attempts: Map<number, { invokeAtMs: number | null; outcome: OperationEvent | null }>;
  acknowledged: boolean;
  anyUnknown: boolean;
  anyFail: boolean;
}

interface AckedAttempt {
  opId: string;
  invokeAtMs: number;
  okAtMs: number;
  term: number;
}

/** `stored` is null when the final primary could not be read: only the history-only checks run. */
export function checkHistory(
  events: readonly HistoryEvent[],
  stored: readonly StoredWrite[] | null,
  options: CheckOptions = {},
): CheckResult {
  const maxListed = options.maxListedViolations ?? 50;
  const violations: Violation[] = [];
  let unlisted = 0;
  const violate = (v: Violation) => {
    if (violations.length < maxListed) violations.push(v);
    else unlisted += 1;
  };

  const ops = summarizeOperations(events);
  const storedById = new Map<string, Array<number | null>>();
  let storedRows = 0;
  for (const row of stored ?? []) {
    storedRows += row.terms.length;
    const terms = storedById.get(row.opId) ?? [];
    terms.push(...row.terms);
    storedById.set(row.opId, terms);
  }

  let acknowledged = 0;
  let definitelyFailed = 0;
  let unknown = 0;
  for (const op of ops.values()) {
    const copies = storedById.get(op.opId)?.length ?? 0;
    if (op.acknowledged) acknowledged += 1;
    else if (op.anyUnknown) unknown += 1;
    else if (op.anyFail) definitelyFailed += 1;
    if (stored === null) continue;
    if (op.acknowledged && copies === 0) {
      violate({ kind: 'lost', opId: op.opId, detail: `acknowledged write ${op.opId} is missing` });
    }
    if (copies > 1) {
      violate({ kind: 'duplicate', opId: op.opId, detail: `write ${op.opId} is stored ${copies} times` });
    }
    if (!op.acknowledged && !op.anyUnknown && op.anyFail && copies > 0) {
      violate({
        kind: 'failed-applied',
        opId: op.opId,
        detail: `write ${op.opId} was reported as not committed but is stored`,
      });
    }
  }
  for (const opId of storedById.keys()) {
    if (!ops.has(opId)) violate({ kind: 'phantom', opId, detail: `stored write ${opId} was never sent` });
  }

  const acked = ackedAttempts(events);
  for (const v of twoPrimaryViolations(acked)) violate(v);

  const rounds = roundResults(events, acked);
  for (const r of rounds) {
    if (r.rtoMs === null) {
      violate({
        kind: 'no-recovery',
        round: r.round,
        detail: `round ${r.round} (${r.fault}): no write succeeded after the fault`,
      });
    }
  }

  const errorsBySqlstate: Record<string, number> = {};
  for (const e of events) {
    if (e.type === 'fail' || e.type === 'unknown') {
      const code = e.sqlstate ?? 'none';
      errorsBySqlstate[code] = (errorsBySqlstate[code] ?? 0) + 1;
    }
  }

  return {
    ok: stored !== null && violations.length === 0 && unlisted === 0,
    verified: stored !== null,
    operations: ops.size,
    acknowledged,
    definitelyFailed,
    unknown,
    storedRows,
    violations,
    unlistedViolations: unlisted,
    rounds,
    errorsBySqlstate,
  };
}

function summarizeOperations(events: readonly HistoryEvent[]): Map<string, OpSummary> {
  const ops = new Map<string, OpSummary>();
  for (const e of events) {
    if (e.type === 'fault' || e.type === 'heal') continue;
    let op = ops.get(e.opId);
    if (op === undefined) {
      op = { opId: e.opId, attempts: new Map(), acknowledged: false, anyUnknown: false, anyFail: false };
      ops.set(e.opId, op);
    }
    const attempt = op.attempts.get(e.attempt) ?? { invokeAtMs: null, outcome: null };
    if (e.type === 'invoke') {
      attempt.invokeAtMs = e.atMs;
    } else {
      attempt.outcome = e;
      if (e.type === 'ok') op.acknowledged = true;
      if (e.type === 'unknown') op.anyUnknown = true;
      if (e.type === 'fail') op.anyFail = true;
    }
    op.attempts.set(e.attempt, attempt);
  }
  // An attempt invoked but never answered (the drill ended first) is an unknown outcome.
  for (const op of ops.values()) {
    for (const a of op.attempts.values()) if (a.outcome === null) op.anyUnknown = true;
  }
  return ops;
}

function ackedAttempts(events: readonly HistoryEvent[]): AckedAttempt[] {
  const invokes = new Map<string, number>();
  const acked: AckedAttempt[] = [];
  for (const e of events) {
    if (e.type === 'invoke') invokes.set(`${e.opId}#${e.attempt}`, e.atMs);
    if (e.type === 'ok' && e.term !== null) {
      const invokeAtMs = invokes.get(`${e.opId}#${e.attempt}`) ?? e.atMs;
      acked.push({ opId: e.opId, invokeAtMs, okAtMs: e.atMs, term: e.term });
    }
  }
  return acked.sort((a, b) => a.okAtMs - b.okAtMs);
}

/**
 * Write A (term a) was invoked after write B (term b > a) was acknowledged: A ran
 * on the old primary while the new one was already taking writes.
 */
function twoPrimaryViolations(ackedByOkTime: readonly AckedAttempt[]): Violation[] {
  const prefixMaxTerm: number[] = [];
  const prefixMaxOp: string[] = [];
  let maxTerm = Number.NEGATIVE_INFINITY;
  let maxOp = '';
  for (const a of ackedByOkTime) {
    if (a.term > maxTerm) {
      maxTerm = a.term;
      maxOp = a.opId;
    }
    prefixMaxTerm.push(maxTerm);
    prefixMaxOp.push(maxOp);
  }
  const out: Violation[] = [];
  for (const a of ackedByOkTime) {
    const before = countOkBefore(ackedByOkTime, a.invokeAtMs);
    if (before === 0) continue;
    const newerTerm = prefixMaxTerm[before - 1]!;
    if (newerTerm > a.term) {
      out.push({
        kind: 'two-primaries',
        opId: a.opId,
        detail: `write ${a.opId} was acknowledged in term ${a.term} after write ${prefixMaxOp[before - 1]} was acknowledged in term ${newerTerm}`,
      });
    }
  }
  return out;
}

/** How many acknowledgements happened strictly before `atMs` (binary search over okAtMs). */
function countOkBefore(ackedByOkTime: readonly AckedAttempt[], atMs: number): number {
  let lo = 0;
  let hi = ackedByOkTime.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ackedByOkTime[mid]!.okAtMs < atMs) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function roundResults(
  events: readonly HistoryEvent[],
  ackedByOkTime: readonly AckedAttempt[],
): RoundResult[] {
  const faults = events.filter((e): e is FaultEvent => e.type === 'fault');
  const okTimes = events.filter((e) => e.type === 'ok').map((e) => e.atMs);
  const errorTimes = events.filter((e) => e.type === 'fail' || e.type === 'unknown').map((e) => e.atMs);
  const endMs = events.reduce((m, e) => Math.max(m, e.atMs), 0);
  const maxTermUpTo: number[] = [];
  for (const a of ackedByOkTime) maxTermUpTo.push(Math.max(maxTermUpTo.at(-1) ?? a.term, a.term));
  return faults.map((fault, i) => {
    const nextAtMs = faults[i + 1]?.atMs ?? Number.POSITIVE_INFINITY;
    const before = countOkBefore(ackedByOkTime, fault.atMs);
    const termBefore = before > 0 ? maxTermUpTo[before - 1]! : null;
    let recovery: AckedAttempt | undefined;
    for (const a of ackedByOkTime) {
      if (a.okAtMs <= fault.atMs || a.okAtMs >= nextAtMs) continue;
      if (fault.expectsNewTerm && termBefore !== null && a.term <= termBefore) continue;
      recovery = a;
      break;
    }
    // Without terms (a proxy that does not expose one), the first acknowledgement after the fault counts.
    let rtoMs = recovery ? recovery.okAtMs - fault.atMs : null;
    if (rtoMs === null && ackedByOkTime.length === 0) {
      const first = okTimes.find((t) => t > fault.atMs && t < nextAtMs);
      rtoMs = first === undefined ? null : first - fault.atMs;
    }
    const windowEnd = Math.min(nextAtMs, endMs + 1);
    return {
      round: fault.round,
      fault: fault.name,
      faultAtMs: fault.atMs,
      rtoMs,
      termBefore,
      termAfter: recovery?.term ?? null,
      errors: errorTimes.filter((t) => t >= fault.atMs && t < windowEnd).length,
    };
  });
}

/** A plain-text summary for the terminal: rounds, errors by SQLSTATE, violations. */
export function formatCheckResult(result: CheckResult): string {
  const lines: string[] = [];
  lines.push(
    table(
      ['operations', 'acknowledged', 'failed', 'unknown', 'stored rows', 'violations'],
      [
        [
          result.operations,
          result.acknowledged,
          result.definitelyFailed,
          result.unknown,
          result.storedRows,
          result.violations.length + result.unlistedViolations,
        ].map(String),
      ],
    ),
  );
  if (result.rounds.length > 0) {
    lines.push('');
    lines.push(
      table(
        ['round', 'fault', 'RTO ms', 'term before', 'term after', 'errors'],
        result.rounds.map((r) => [
          String(r.round),
          r.fault,
          r.rtoMs === null ? 'never' : String(Math.round(r.rtoMs)),
          r.termBefore === null ? '-' : String(r.termBefore),
          r.termAfter === null ? '-' : String(r.termAfter),
          String(r.errors),
        ]),
      ),
    );
  }
  const codes = Object.entries(result.errorsBySqlstate).sort(([a], [b]) => a.localeCompare(b));
  if (codes.length > 0) {
    lines.push('');
    lines.push(
      table(
        ['SQLSTATE', 'client errors'],
        codes.map(([code, n]) => [code, String(n)]),
      ),
    );
  }
  lines.push('');
  if (!result.verified) {
    lines.push(
      'NOT VERIFIED: the final rows could not be read, so lost and duplicate writes were not checked',
    );
  } else if (result.ok) {
    lines.push('PASS: no acknowledged write lost, none applied twice, one primary at a time');
  } else {
    lines.push(`FAIL: ${result.violations.length + result.unlistedViolations} violation(s)`);
    for (const v of result.violations) lines.push(`  ${v.kind}: ${v.detail}`);
    if (result.unlistedViolations > 0) lines.push(`  ... and ${result.unlistedViolations} more`);
  }
  return lines.join('\n');
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
