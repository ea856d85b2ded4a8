// A 100 MB bytea goes through the proxy both ways (Bind to PostgreSQL, DataRow back)
// streamed with backpressure: the proxy never holds the row whole (regression guard for
// the JS proxy that deadlocked above ~300 KB by ignoring socket.write's return value).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { startProxy, tempDatabase } from '../support/proxy.ts';

const run = promisify(execFile);
const MEGABYTES = 100;

test('a 100 MB bytea round trip streams through without the proxy holding it', async (t) => {
  const proxy = await startProxy(t);
  const database = await tempDatabase(t);
  global.gc?.();
  const baselineRss = process.memoryUsage().rss;
  let peakRss = baselineRss;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, 20);
  t.after(() => clearInterval(sampler));
  const child = path.join(import.meta.dirname, 'fixtures', 'big-row-client.ts');
  const { stdout } = await run(
    process.execPath,
    ['--import', 'tsx', child, String(proxy.port), database, String(MEGABYTES)],
    {
      maxBuffer: 1024 * 1024,
      // An upper bound for a loaded CI machine, not an expected duration.
      timeout: 600_000,
    },
  );
  clearInterval(sampler);
  const result = JSON.parse(stdout.trim().split('\n').at(-1)!);
  assert.equal(result.bytes, MEGABYTES * 1024 * 1024);
  assert.equal(result.gotMd5, result.sentMd5);
  const extraMb = (peakRss - baselineRss) / (1024 * 1024);
  t.diagnostic(`proxy RSS growth during the transfer: ${extraMb.toFixed(1)} MB`);
  // Holding the row once (as bytes, plus its hex text form on the wire: 200 MB) would show
  // as far more than this.
  assert.ok(extraMb < 64, `proxy RSS grew ${extraMb.toFixed(1)} MB: it must stream, not buffer`);
});
