// `pgward drill SCENARIO`: break the local cluster on purpose while a workload
// runs through the proxies, then check the history: nothing acknowledged lost,
// nothing applied twice, one primary at a time. Exit 1 on any violation.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { formatCheckResult } from '../../drill/checker.ts';
import { renderReport } from '../../drill/report.ts';
import { type DrillOutcome, runDrill } from '../../drill/runner.ts';
import { findScenario, SCENARIOS } from '../../drill/scenarios/index.ts';
import { LocalClusterTarget } from '../../drill/target.ts';
import type { WorkloadKind } from '../../drill/workload.ts';
import { UserError } from '../../errors.ts';

const WORKLOADS: WorkloadKind[] = ['keyed', 'unkeyed', 'mixed'];

function bounded(name: string, min: number, max: number) {
  return (text: string): number => {
    const value = Number(text);
    if (!/^\d+$/.test(text) || value < min || value > max) {
      throw new UserError(
        `${name} must be a whole number from ${min} to ${max}, got '${text}'`,
        `pass e.g. ${name} ${min}`,
      );
    }
    return value;
  };
}

export interface DrillCommandOptions {
  rounds: number;
  workload: string;
  clients: number;
  json?: boolean;
  report?: string;
  dir: string;
}

export function drillSummaryJson(outcome: DrillOutcome): Record<string, unknown> {
  return {
    scenario: outcome.scenario,
    runId: outcome.runId,
    startedAt: outcome.startedAt.toISOString(),
    ...outcome.result,
    ok: outcome.result.ok && outcome.aborted === null,
    aborted: outcome.aborted,
  };
}

export async function drillCommand(scenarioName: string, options: DrillCommandOptions): Promise<number> {
  const scenario = findScenario(scenarioName);
  if (scenario === undefined) {
    throw new UserError(
      `unknown drill scenario '${scenarioName}'`,
      `choose one of ${SCENARIOS.map((s) => s.name).join(', ')}`,
    );
  }
  if (!WORKLOADS.includes(options.workload as WorkloadKind)) {
    throw new UserError(`unknown workload '${options.workload}'`, `choose one of ${WORKLOADS.join(', ')}`);
  }
  const target = new LocalClusterTarget(path.resolve(options.dir));
  const outcome = await runDrill({
    target,
    scenario,
    rounds: options.rounds,
    workload: options.workload as WorkloadKind,
    clients: options.clients,
    log: (line) => process.stderr.write(`drill: ${line}\n`),
  });
  if (options.report !== undefined) {
    writeFileSync(
      options.report,
      renderReport({
        title: `pgward drill: ${scenario.name}`,
        scenario: `${scenario.name} (${options.rounds} rounds, ${options.workload}, ${options.clients} clients)`,
        startedAt: outcome.startedAt,
        events: outcome.events,
        result: outcome.result,
      }),
    );
  }
  if (options.json) {
    process.stdout.write(`${JSON.stringify(drillSummaryJson(outcome), null, 2)}\n`);
  } else {
    process.stdout.write(
      `${scenario.name}: ${scenario.description}\n\n${formatCheckResult(outcome.result)}\n`,
    );
    if (outcome.aborted !== null) process.stdout.write(`ABORTED: ${outcome.aborted}\n`);
    if (options.report !== undefined) process.stdout.write(`report: ${options.report}\n`);
  }
  return outcome.result.ok && outcome.aborted === null ? 0 : 1;
}

export function register(program: Command): void {
  program
    .command('drill')
    .description(
      `break the local cluster on purpose and check the outcome (${SCENARIOS.map((s) => s.name).join(', ')})`,
    )
    .argument('<scenario>', 'which fault to inject')
    .option('--rounds <n>', 'how many times', bounded('--rounds', 1, 1000), 1)
    .option('--workload <kind>', `writes through the proxies: ${WORKLOADS.join(', ')}`, 'mixed')
    .option('--clients <n>', 'concurrent clients', bounded('--clients', 1, 256), 4)
    .option('--json', 'print the result as JSON')
    .option('--report <file.html>', 'write a self-contained HTML report with a timeline')
    .option('-d, --dir <dir>', 'directory of the local cluster', '.pgward')
    .action(async (scenarioName: string, options: DrillCommandOptions) => {
      const code = await drillCommand(scenarioName, options);
      if (code !== 0) process.exitCode = code;
    });
}
