import { flapScenario } from './flap.ts';
import { killBackupScenario, killNodeScenario, killPostgresScenario } from './kill.ts';
import { partitionPrimaryScenario } from './partition.ts';
import { pausePrimaryScenario } from './pause.ts';
import { switchoverScenario } from './switchover.ts';
import type { Scenario } from './types.ts';

export const SCENARIOS: readonly Scenario[] = [
  killPostgresScenario,
  killNodeScenario,
  pausePrimaryScenario,
  partitionPrimaryScenario,
  killBackupScenario,
  switchoverScenario,
  flapScenario,
];

export function findScenario(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}
