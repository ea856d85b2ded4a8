// ddmin (Zeller & Hildebrandt) over the indexes of a failing run's fault schedule:
// the smallest subset that still fails, so a failure reads as a few faults.
import { runSeed, type SimResult } from './simulator.ts';

/** Bounds shrinking work: each probe is a whole simulated run. */
const MAX_PROBES = 400;

export function ddmin(items: number[], fails: (subset: number[]) => boolean): number[] {
  let current = items;
  let n = 2;
  let probes = 0;
  while (current.length >= 2 && probes < MAX_PROBES) {
    const chunk = Math.ceil(current.length / n);
    const chunks: number[][] = [];
    for (let i = 0; i < current.length; i += chunk) chunks.push(current.slice(i, i + chunk));
    let reduced = false;
    for (const c of chunks) {
      probes++;
      if (fails(c)) {
        current = c;
        n = 2;
        reduced = true;
        break;
      }
    }
    if (!reduced) {
      for (const c of chunks) {
        const complement = current.filter((x) => !c.includes(x));
        probes++;
        if (complement.length > 0 && fails(complement)) {
          current = complement;
          n = Math.max(n - 1, 2);
          reduced = true;
          break;
        }
      }
    }
    if (!reduced) {
      if (n >= current.length) break;
      n = Math.min(n * 2, current.length);
    }
  }
  if (current.length === 1 && fails([])) return [];
  return current;
}

export interface Shrunk {
  keepFaults: number[];
  result: SimResult;
}

/** Shrinks the fault schedule of a failing seed. */
export function shrinkSeed(seed: number, original: SimResult): Shrunk {
  const all = original.faults.map((_, i) => i);
  const failsWith = (subset: number[]) => !runSeed({ seed, keepFaults: subset }).ok;
  const keepFaults = all.length === 0 ? [] : ddmin(all, failsWith);
  return { keepFaults, result: runSeed({ seed, keepFaults, trace: true }) };
}

export function replayCommand(seed: number, keepFaults?: number[]): string {
  const faults =
    keepFaults === undefined ? '' : ` --faults ${keepFaults.length === 0 ? 'none' : keepFaults.join(',')}`;
  return `npm run sim -- --seed ${seed}${faults} --trace`;
}
