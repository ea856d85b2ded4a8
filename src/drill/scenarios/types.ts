import type { DrillTarget } from '../target.ts';

export interface ScenarioContext {
  target: DrillTarget;
  round: number;
  /** The primary when the round began. */
  primary: string;
  /** Records a fault in the history (its time is when the fault lands) and on the dashboards. */
  fault(name: string, expectsNewTerm: boolean, detail: string): void;
  /** Waits until a new term has a primary and a write of it was acknowledged; bounded. */
  waitForNewPrimary(termBefore: number): Promise<string>;
  log(line: string): void;
}

export interface Injected {
  /** Undo the fault (restart, resume); the runner then waits for the cluster to be whole. */
  heal(): Promise<void>;
}

export interface Scenario {
  name: string;
  description: string;
  /** Throws a UserError when the target lacks a lever the scenario needs; runs before any write. */
  precheck?(target: DrillTarget): void;
  /** Run the fault (and, for compound scenarios, wait in between); return how to heal. */
  run(ctx: ScenarioContext): Promise<Injected>;
}
