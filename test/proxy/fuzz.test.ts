// Fuzz: at least 100k random and mutated client byte streams against the proxy's session layer,
// in process (in-memory sockets, a fake PostgreSQL behind the pool; test/proxy/fuzz-streams.ts).
// Every stream must end with its session closed before a deadline, the client must only ever
// get well-formed messages, and any FATAL the proxy sends must be a protocol or auth error
// (08P01, 28xxx, 53300), never an internal one; nothing may crash or log an error.
// The streams are split over worker threads (one per core) so the run fits its time budget.
// Replay: PGWARD_FUZZ_SEED=<seed>, one stream: PGWARD_FUZZ_ONLY=<index>, count: PGWARD_FUZZ_STREAMS,
// streams in flight per worker: PGWARD_FUZZ_CONCURRENCY (default 64; 1 runs them in sequence).
import assert from 'node:assert/strict';
import os from 'node:os';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import type { ShardResult } from './fuzz-streams.ts';

const seed = Number(process.env.PGWARD_FUZZ_SEED ?? Date.now() % 2 ** 31);
const only = process.env.PGWARD_FUZZ_ONLY === undefined ? null : Number(process.env.PGWARD_FUZZ_ONLY);
const STREAMS = Number(process.env.PGWARD_FUZZ_STREAMS ?? 100_000);
/**
 * A safety valve for an overloaded machine: no new streams start this long after a worker began, and the run
 * says how many it managed. On two idle cores 100k streams take well under a minute.
 */
const BUDGET_MS = Number(process.env.PGWARD_FUZZ_BUDGET_MS ?? 60_000);
const WORKERS = Math.max(1, Math.min(4, os.availableParallelism()));
console.log(
  `# proxy fuzz seed ${seed} (replay: PGWARD_FUZZ_SEED=${seed}, one stream: PGWARD_FUZZ_ONLY=<index>)`,
);

/** Runs a shard in a worker thread; tsx is registered there before the shard's TypeScript loads. */
function runWorker(indexes: number[]): Promise<ShardResult> {
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./fuzz-worker.ts', import.meta.url).href;
  const source = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(entry)}); });`;
  const worker = new Worker(source, { eval: true, workerData: { seed, indexes, budgetMs: BUDGET_MS } });
  return new Promise((resolve, reject) => {
    worker.once('message', (result: ShardResult) => {
      resolve(result);
      void worker.terminate();
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`fuzz worker exited with code ${code} before reporting`)));
  });
}

describe('proxy session fuzz', () => {
  it(`survives ${only === null ? STREAMS : 1} random and mutated client streams`, {
    timeout: 600_000,
  }, async () => {
    const all = only === null ? Array.from({ length: STREAMS }, (_, i) => i) : [only];
    const shards = Array.from({ length: Math.min(WORKERS, all.length) }, (_, w) =>
      all.filter((_, i) => i % WORKERS === w),
    );
    const startedAt = performance.now();
    const results = await Promise.all(shards.map(runWorker));
    const fatalCodes: Record<string, number> = {};
    for (const result of results) {
      for (const [code, n] of Object.entries(result.fatalCodes))
        fatalCodes[code] = (fatalCodes[code] ?? 0) + n;
    }
    const streams = results.reduce((sum, r) => sum + r.streams, 0);
    console.log(
      `# fuzz: ${streams} streams on ${shards.length} workers in ${Math.round(performance.now() - startedAt)} ms; ` +
        `per worker ${JSON.stringify(results.map((r) => r.elapsedMs))} ms; FATAL codes ${JSON.stringify(fatalCodes)}`,
    );
    if (streams < all.length) {
      console.log(
        `# fuzz: WARNING the ${BUDGET_MS} ms budget ran out after ${streams} of ${all.length} streams`,
      );
    }
    const failureCount = results.reduce((sum, r) => sum + r.failureCount, 0);
    assert.deepEqual(
      results.flatMap((r) => r.failures),
      [],
      `${failureCount} streams failed; the first ones are listed`,
    );
    assert.deepEqual(
      results.flatMap((r) => r.errorLogs),
      [],
      'the proxy logged errors (bugs)',
    );
    assert.equal(
      results.reduce((sum, r) => sum + r.leftoverSessions, 0),
      0,
      'sessions still registered after their clients left',
    );
  });
});
