// `npm run drill:all`: every drill scenario, 20 rounds each (DRILL_ROUNDS to change),
// against a fresh 3-node local cluster; one HTML report per scenario and a summary
// JSON under bench/results/. Not part of CI: it takes a long while.
// A quick check that it works, without touching the committed results:
//   DRILL_ROUNDS=1 DRILL_CLIENTS=3 DRILL_RESULTS=/tmp/drill-quick npm run drill:all
// DRILL_SCENARIOS=kill-backup,flap runs only those (comma-separated names);
// DRILL_WORKLOAD is keyed, unkeyed or mixed (default).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { renderReport } from '../src/drill/report.ts';
import { runDrill } from '../src/drill/runner.ts';
import { SCENARIOS } from '../src/drill/scenarios/index.ts';
import { LocalClusterTarget } from '../src/drill/target.ts';
import type { WorkloadKind } from '../src/drill/workload.ts';
import { downLocalCluster } from '../src/local/down.ts';
import { requireCluster } from '../src/local/layout.ts';
import { upLocalCluster } from '../src/local/up.ts';
import { postgresRunAs } from '../src/postgres/run-as.ts';

function wholeNumber(name: string, fallback: number, max: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > max) {
    throw new Error(`${name} must be a whole number from 1 to ${max}, got '${text}'`);
  }
  return Number(text);
}

const ROUNDS = wholeNumber('DRILL_ROUNDS', 20, 1000);
const CLIENTS = wholeNumber('DRILL_CLIENTS', 4, 256);
const WORKLOAD = (process.env.DRILL_WORKLOAD ?? 'mixed') as WorkloadKind;
if (!['keyed', 'unkeyed', 'mixed'].includes(WORKLOAD)) {
  throw new Error(`DRILL_WORKLOAD must be keyed, unkeyed or mixed, got '${WORKLOAD}'`);
}
const RESULTS = path.resolve(process.env.DRILL_RESULTS ?? path.join(import.meta.dirname, 'results'));
const ONLY = (process.env.DRILL_SCENARIOS ?? '')
  .split(',')
  .map((name) => name.trim())
  .filter((name) => name !== '');
for (const name of ONLY) {
  if (!SCENARIOS.some((s) => s.name === name)) {
    throw new Error(
      `DRILL_SCENARIOS: no scenario '${name}'; choose from ${SCENARIOS.map((s) => s.name).join(', ')}`,
    );
  }
}
const CHOSEN = SCENARIOS.filter((s) => ONLY.length === 0 || ONLY.includes(s.name));
// partition-primary needs network namespaces, which a local cluster does not have.
const SKIP = new Set(['partition-primary']);

const dir = mkdtempSync(path.join(tmpdir(), 'pgward-drill-all-'));
const runAs = postgresRunAs();
if (runAs !== null) (await import('node:fs')).chownSync(dir, runAs.uid, runAs.gid);
mkdirSync(RESULTS, { recursive: true });
const log = (line: string) => process.stderr.write(`${line}\n`);
const summary: Record<string, unknown>[] = [];
let failed = false;
try {
  await upLocalCluster({ dir, port: 0, timeoutMs: 300_000, log });
  const target = new LocalClusterTarget(dir);
  for (const scenario of CHOSEN) {
    if (SKIP.has(scenario.name)) {
      summary.push({ scenario: scenario.name, skipped: 'needs network namespaces' });
      continue;
    }
    log(`== ${scenario.name}: ${ROUNDS} rounds`);
    const outcome = await runDrill({
      target,
      scenario,
      rounds: ROUNDS,
      workload: WORKLOAD,
      clients: CLIENTS,
      log,
    });
    const report = path.join(RESULTS, `drill-${scenario.name}.html`);
    writeFileSync(
      report,
      renderReport({
        title: `pgward drill: ${scenario.name}`,
        scenario: `${scenario.name} (${ROUNDS} rounds, ${WORKLOAD}, ${CLIENTS} clients)`,
        startedAt: outcome.startedAt,
        events: outcome.events,
        result: outcome.result,
      }),
    );
    const rtos = outcome.result.rounds
      .map((r) => r.rtoMs)
      .filter((x): x is number => x !== null)
      .sort((a, b) => a - b);
    const pct = (p: number) =>
      rtos.length === 0 ? null : rtos[Math.min(rtos.length - 1, Math.floor(p * rtos.length))];
    const ok = outcome.result.ok && outcome.aborted === null;
    failed ||= !ok;
    summary.push({
      scenario: scenario.name,
      ok,
      aborted: outcome.aborted,
      rounds: outcome.result.rounds.length,
      acknowledged: outcome.result.acknowledged,
      violations: outcome.result.violations.length + outcome.result.unlistedViolations,
      rtoP50Ms: pct(0.5),
      rtoP99Ms: pct(0.99),
      errorsBySqlstate: outcome.result.errorsBySqlstate,
      // Relative inside the repository (the committed JSON), absolute for DRILL_RESULTS elsewhere.
      report: report.startsWith(process.cwd() + path.sep) ? path.relative(process.cwd(), report) : report,
    });
    const p50 = pct(0.5);
    log(
      `${scenario.name}: ${ok ? 'PASS' : 'FAIL'} (RTO p50 ${p50 === null || p50 === undefined ? '-' : Math.round(p50)} ms)`,
    );
  }
} finally {
  await downLocalCluster(requireCluster(dir), { log }).catch((error: Error) =>
    log(`down failed: ${error.message}`),
  );
  rmSync(dir, { recursive: true, force: true });
  writeFileSync(
    path.join(RESULTS, 'drill.json'),
    `${JSON.stringify({ rounds: ROUNDS, clients: CLIENTS, workload: WORKLOAD, at: new Date().toISOString(), summary }, null, 2)}\n`,
  );
}
process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
process.exit(failed ? 1 : 0);
