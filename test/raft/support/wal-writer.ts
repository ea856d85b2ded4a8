// Appends entries to a FileStorage forever, printing each index once persist()
// resolved (i.e. after its fsync). The crash test kill -9s it mid-stream.
import { silentLogger } from '../../../src/log.ts';
import { FileStorage } from '../../../src/raft/storage/file-storage.ts';

const dir = process.argv[2]!;
const storage = await FileStorage.open(dir, { logger: silentLogger(), segmentBytes: 2048 });
for (let index = storage.lastIndex() + 1; ; index++) {
  const data = Buffer.alloc(64 + (index % 200), index % 251);
  await storage.persist({
    entries: [{ index, term: 1, type: 'normal', data }],
    hardState: { term: 1, vote: 'a', commit: index },
    mustSync: true,
  });
  process.stdout.write(`${index}\n`);
}
