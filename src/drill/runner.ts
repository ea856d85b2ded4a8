// Runs a drill: start the workload, then per round wait for a whole cluster, inject
// the scenario's fault, wait for recovery, heal; finally read what the primary
// holds and let the checker decide.
import { randomBytes } from 'node:crypto';
import { UserError } from '../errors.ts';
import { type CheckResult, checkHistory } from './checker.ts';
import { type HistoryEvent, HistoryRecorder } from './history.ts';
import type { Scenario, ScenarioContext } from './scenarios/types.ts';
import type { DrillTarget } from './target.ts';
import { createTable, dropTable, readStored, Workload, type WorkloadKind } from './workload.ts';

export interface DrillOptions {
  target: DrillTarget;
  scenario: Scenario;
  rounds: number;
  workload: WorkloadKind;
  clients: number;
  /** Bound on the cluster becoming whole (one primary, all others streaming) before each round and at the end. */
  wholeTimeoutMs?: number;
  /** Bound on a new primary taking writes after a fault. */
  recoveryTimeoutMs?: number;
  /** Writes before the first fault and after healing, so each round has a baseline. */
  settleMs?: number;
  keepTable?: boolean;
  log?: (line: string) => void;
  nowMs?: () => number;
}

export interface DrillOutcome {
  scenario: string;
  runId: string;
  startedAt: Date;
  events: readonly HistoryEvent[];
  result: CheckResult;
  /** Set when the drill could not complete (the cluster never healed, a fault could not be injected). */
  aborted: string | null;
}

export async function runDrill(options: DrillOptions): Promise<DrillOutcome> {
  const { target, scenario } = options;
  const log = options.log ?? (() => {});
  const nowMs = options.nowMs ?? (() => performance.timeOrigin + performance.now());
  const wholeTimeoutMs = options.wholeTimeoutMs ?? 120_000;
  const recoveryTimeoutMs = options.recoveryTimeoutMs ?? 30_000;
  const settleMs = options.settleMs ?? 1000;
  const runId = `${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const recorder = new HistoryRecorder(nowMs);
  const startedAt = new Date();
  const urls = target.nodeNames().map((n) => target.proxyUrl(n));
  scenario.precheck?.(target);

  try {
    await waitWhole(target, wholeTimeoutMs, log);
    await withRetry(() => createTable(urls[0]!, runId), wholeTimeoutMs);
  } catch (error) {
    throw new UserError(
      `cannot start the drill: ${(error as Error).message}`,
      'check `pgward status`; every node must be up (pgward up) before a drill',
    );
  }
  const workload = new Workload({ urls, clients: options.clients, kind: options.workload, runId, recorder });
  workload.start();
  let aborted: string | null = null;
  try {
    for (let round = 1; round <= options.rounds; round++) {
      await waitWhole(target, wholeTimeoutMs, log);
      await waitAck(recorder, nowMs(), recoveryTimeoutMs, 'a write before the fault');
      await delay(settleMs);
      const status = await target.status();
      if (status?.primary == null) throw new Error('no primary before the fault');
      const ctx: ScenarioContext = {
        target,
        round,
        primary: status.primary,
        fault: (name, expectsNewTerm, detail) => {
          recorder.record({ type: 'fault', round, name, expectsNewTerm, detail });
          log(`round ${round}: ${detail}`);
          void target.announce(`${scenario.name} round ${round}: ${detail}`);
        },
        waitForNewPrimary: (termBefore) => waitNewPrimary(target, recorder, termBefore, recoveryTimeoutMs),
        log,
      };
      const injected = await scenario.run(ctx);
      try {
        const primary = await waitNewPrimaryOrAck(target, recorder, status.term, recoveryTimeoutMs, nowMs());
        log(`round ${round}: writes go on (primary ${primary})`);
      } finally {
        await injected.heal();
        recorder.record({ type: 'heal', round, name: scenario.name });
      }
    }
    await waitWhole(target, wholeTimeoutMs, log);
    await delay(settleMs);
  } catch (error) {
    aborted = (error as Error).message;
    log(`drill aborted: ${aborted}`);
  } finally {
    await workload.stop();
  }
  if (aborted === null) await waitWhole(target, wholeTimeoutMs, log).catch(() => undefined);
  let stored: Awaited<ReturnType<typeof readStored>> | null = null;
  try {
    stored = await withRetry(() => readStored(urls[0]!, runId), wholeTimeoutMs);
    if (!options.keepTable) await dropTable(urls[0]!, runId).catch(() => undefined);
  } catch (error) {
    aborted = aborted ?? `could not read the written rows back: ${(error as Error).message}`;
  }
  const events = recorder.events();
  const result = checkHistory(events, stored);
  return { scenario: scenario.name, runId, startedAt, events, result, aborted };
}

async function waitWhole(target: DrillTarget, timeoutMs: number, log: (line: string) => void): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let detail = '';
  while (Date.now() < deadline) {
    const answer = await target.whole();
    if (answer.whole) return;
    detail = answer.detail;
    await delay(200);
  }
  log(`cluster not whole: ${detail}`);
  throw new Error(
    `the cluster did not become whole (one primary, every other node streaming) within ${timeoutMs} ms: ${detail}`,
  );
}

function lastAckAfter(
  recorder: HistoryRecorder,
  afterMs: number,
  minTerm: number | null,
): HistoryEvent | undefined {
  const events = recorder.events();
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i]!;
    if (e.atMs <= afterMs) return undefined;
    if (e.type === 'ok' && (minTerm === null || (e.term ?? 0) > minTerm)) return e;
  }
  return undefined;
}

async function waitAck(
  recorder: HistoryRecorder,
  afterMs: number,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (lastAckAfter(recorder, afterMs, null)) return;
    await delay(50);
  }
  throw new Error(`no acknowledged write within ${timeoutMs} ms (${what})`);
}

function maxAckedTerm(recorder: HistoryRecorder): number {
  let max = 0;
  for (const e of recorder.events()) if (e.type === 'ok' && e.term !== null && e.term > max) max = e.term;
  return max;
}

/** Waits for a term above `termBefore` with a primary, and a write acknowledged by a newer timeline. */
async function waitNewPrimary(
  target: DrillTarget,
  recorder: HistoryRecorder,
  termBefore: number,
  timeoutMs: number,
): Promise<string> {
  const timelineBefore = maxAckedTerm(recorder);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const status = await target.status();
    if (status !== null && status.term > termBefore && status.primary !== null) {
      if (lastAckAfter(recorder, 0, timelineBefore)) return status.primary;
    }
    await delay(50);
  }
  throw new Error(`no new primary took a write within ${timeoutMs} ms`);
}

/** After a fault: a new primary (if the term moved or the old primary is gone) or simply writes going on. */
async function waitNewPrimaryOrAck(
  target: DrillTarget,
  recorder: HistoryRecorder,
  termBefore: number,
  timeoutMs: number,
  faultAtMs: number,
): Promise<string> {
  const faults = recorder.events().filter((e) => e.type === 'fault');
  const expectsNewTerm =
    faults.at(-1)?.type === 'fault' && (faults.at(-1) as { expectsNewTerm: boolean }).expectsNewTerm;
  if (expectsNewTerm) return waitNewPrimary(target, recorder, termBefore, timeoutMs);
  await waitAck(recorder, faultAtMs, timeoutMs, 'writes after the fault');
  return (await target.status())?.primary ?? '?';
}

async function withRetry<T>(fn: () => Promise<T>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await delay(500);
    }
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
