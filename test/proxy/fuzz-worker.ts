// Worker-thread entry of the fuzzer: runs one shard of streams and posts its ShardResult.
import { parentPort, workerData } from 'node:worker_threads';
import { runShard } from './fuzz-streams.ts';

const { seed, indexes, budgetMs } = workerData as {
  seed: number;
  indexes: number[];
  budgetMs: number;
};
parentPort!.postMessage(await runShard(seed, indexes, budgetMs));
