// Deterministic simulation of the Raft core: at least 500 seeds from a range
// derived from the commit (PGWARD_SIM_START overrides), one seed twice to prove
// identical traces, and every seed in regressions.json. A failure prints a
// shrunk fault schedule and the replay command.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { replayCommand, runSeed, type SimResult, shrinkSeed } from './index.ts';

const SEEDS = 500;
const FALLBACK_START = 1_000_000;

function startSeed(): number {
  const override = process.env.PGWARD_SIM_START;
  if (override !== undefined) {
    const n = Number(override);
    if (!Number.isInteger(n) || n < 0) throw new Error('PGWARD_SIM_START must be a non-negative integer');
    return n;
  }
  try {
    const head = execFileSync('git', ['rev-parse', 'HEAD'], {
      cwd: import.meta.dirname,
      encoding: 'utf8',
    }).trim();
    return Number.parseInt(head.slice(0, 7), 16);
  } catch {
    return FALLBACK_START;
  }
}

function explain(r: SimResult): string {
  const shrunk = shrinkSeed(r.seed, r);
  return `seed ${r.seed} (${r.mode}) failed: ${r.error}\nreplay: ${replayCommand(r.seed, shrunk.keepFaults)}`;
}

test('simulator: one seed twice gives identical traces', () => {
  const seed = startSeed();
  const a = runSeed({ seed });
  const b = runSeed({ seed });
  assert.equal(a.traceHash, b.traceHash, `seed ${seed}: traces differ between two runs`);
  assert.equal(a.events, b.events);
});

test('simulator: regression seeds', () => {
  const regressions = JSON.parse(readFileSync(join(import.meta.dirname, 'regressions.json'), 'utf8')) as {
    seed: number;
    note: string;
  }[];
  for (const { seed, note } of regressions) {
    const r = runSeed({ seed });
    assert.ok(r.ok, `regression (${note}): ${r.ok ? '' : explain(r)}`);
  }
});

test(`simulator: ${SEEDS} seeds from the commit's range`, () => {
  const start = startSeed();
  console.log(`# simulator seeds ${start}..${start + SEEDS - 1} (PGWARD_SIM_START=${start} to replay)`);
  let failoverMax = 0;
  for (let seed = start; seed < start + SEEDS; seed++) {
    const r = runSeed({ seed });
    assert.ok(r.ok, r.ok ? '' : explain(r));
    if (r.failoverMs !== undefined) failoverMax = Math.max(failoverMax, r.failoverMs);
  }
  console.log(`# slowest failover ${failoverMax.toFixed(0)} ms of simulated time`);
});
