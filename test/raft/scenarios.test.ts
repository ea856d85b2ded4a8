// Golden-transcript scenario tests (etcd-io/raft datadriven style). Each script in
// scenarios/ names the rule it checks. UPDATE_GOLDEN=1 rewrites the transcripts.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { formatScenario, runScenario } from './interaction.ts';

const dir = join(import.meta.dirname, 'scenarios');
const update = process.env.UPDATE_GOLDEN === '1';

for (const file of readdirSync(dir)
  .filter((f) => f.endsWith('.txt'))
  .sort()) {
  test(`raft scenario ${file}`, () => {
    const path = join(dir, file);
    const results = runScenario(readFileSync(path, 'utf8'));
    if (update) {
      writeFileSync(
        path,
        formatScenario(
          results.map((r) => ({ comments: r.block.comments, command: r.block.command, output: r.output })),
        ),
      );
      return;
    }
    for (const { block, output } of results) {
      assert.equal(
        output,
        block.expected,
        `${file}: output of "${block.command}" differs (UPDATE_GOLDEN=1 rewrites)`,
      );
    }
  });
}
