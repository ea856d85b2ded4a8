// Entry points of the deterministic simulator for tests, the CLI and bench/raft.ts.
import { runSeed } from './simulator.ts';

export { replayCommand, shrinkSeed } from './shrink.ts';
export { FAILOVER_BOUND_MS, runSeed, type SimMode, type SimOptions, type SimResult } from './simulator.ts';

export interface SimThroughput {
  seeds: number;
  events: number;
  wallMs: number;
  eventsPerSecond: number;
  simulatedMsPerWallMs: number;
}

/**
 * Simulator throughput over `seeds` consecutive seeds from `startSeed`: simulated
 * events (ticks, deliveries, fsyncs, faults) processed per wall-clock second,
 * invariant checks included. For bench/raft.ts.
 */
export function measureSimEventsPerSecond(seeds = 50, startSeed = 1): SimThroughput {
  let events = 0;
  let simulatedMs = 0;
  const t0 = performance.now();
  for (let s = startSeed; s < startSeed + seeds; s++) {
    const r = runSeed({ seed: s });
    events += r.events;
    simulatedMs += r.simulatedMs;
  }
  const wallMs = performance.now() - t0;
  return {
    seeds,
    events,
    wallMs,
    eventsPerSecond: (events / wallMs) * 1000,
    simulatedMsPerWallMs: simulatedMs / wallMs,
  };
}
