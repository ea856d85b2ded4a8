// npm run sim -- --seeds N [--start S]       run N seeds, shrink and report failures
// npm run sim -- --seed X [--faults i,j] [--trace]   replay one seed
import { parseArgs } from 'node:util';
import { describeFault } from './faults.ts';
import { replayCommand, runSeed, type SimResult, shrinkSeed } from './index.ts';

function usage(message: string): never {
  process.stderr.write(
    `sim: ${message}\nusage: npm run sim -- --seeds N [--start S] | --seed X [--faults i,j|none] [--trace]\n`,
  );
  process.exit(2);
}

function parseSeed(value: string, name: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) usage(`${name} must be an integer in [0, 2^32)`);
  return n;
}

function report(r: SimResult): string {
  const extra = r.failoverMs === undefined ? '' : ` failover=${r.failoverMs.toFixed(0)}ms`;
  return `seed ${r.seed} ${r.mode}: ${r.ok ? 'ok' : 'FAIL'} events=${r.events} commits=${r.commits}${extra} trace=${r.traceHash.toString(16)}`;
}

function main(): void {
  let values: { seed?: string; seeds?: string; start?: string; faults?: string; trace?: boolean };
  try {
    values = parseArgs({
      options: {
        seed: { type: 'string' },
        seeds: { type: 'string' },
        start: { type: 'string' },
        faults: { type: 'string' },
        trace: { type: 'boolean' },
      },
    }).values;
  } catch (e) {
    usage((e as Error).message);
  }
  if (values.seed !== undefined) {
    const seed = parseSeed(values.seed, '--seed');
    const keepFaults =
      values.faults === undefined
        ? undefined
        : values.faults === 'none'
          ? []
          : values.faults.split(',').map((f) => parseSeed(f, '--faults'));
    const r = runSeed({ seed, trace: values.trace === true, ...(keepFaults ? { keepFaults } : {}) });
    if (values.trace) for (const line of r.trace) process.stdout.write(`${line}\n`);
    for (const f of r.faults) process.stdout.write(`fault: ${describeFault(f)}\n`);
    process.stdout.write(`${report(r)}\n`);
    if (!r.ok) {
      process.stdout.write(`${r.error}\n`);
      process.exitCode = 1;
    }
    return;
  }
  const count =
    values.seeds === undefined ? usage('give --seed X or --seeds N') : parseSeed(values.seeds, '--seeds');
  const start = values.start === undefined ? 1 : parseSeed(values.start, '--start');
  let failed = 0;
  const t0 = performance.now();
  for (let seed = start; seed < start + count; seed++) {
    const r = runSeed({ seed });
    if (r.ok) continue;
    failed++;
    process.stdout.write(`${report(r)}\n  ${r.error}\n  shrinking ${r.faults.length} faults...\n`);
    const shrunk = shrinkSeed(seed, r);
    for (const i of shrunk.keepFaults) process.stdout.write(`  fault ${i}: ${describeFault(r.faults[i]!)}\n`);
    process.stdout.write(`  still fails: ${shrunk.result.error ?? '(no: flaky shrink)'}\n`);
    process.stdout.write(`  replay: ${replayCommand(seed, shrunk.keepFaults)}\n`);
  }
  const wallMs = performance.now() - t0;
  process.stdout.write(
    `${count - failed}/${count} seeds passed from ${start} in ${(wallMs / 1000).toFixed(1)}s\n`,
  );
  if (failed > 0) process.exitCode = 1;
}

main();
