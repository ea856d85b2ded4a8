// One Raft member as a process, for the real-process tests and bench:raft.
//   node --import tsx test/raft/support/node-process.ts '<json NodeProcessConfig>'
// stdin, one command per line:  <id> propose <text> | <id> status | <id> bench <count>
// stdout, one JSON object per line: {"id":..,"ok":..,...} replies and {"event":..} events.
// A failed start (e.g. a corrupt WAL) prints the error on stderr and exits with 2.
import readline from 'node:readline';
import { createLogger } from '../../../src/log.ts';
import { RaftDriver, type RaftTiming } from '../../../src/raft/driver.ts';
import { MemoryStateMachine } from './memory-state-machine.ts';

export interface NodeProcessConfig {
  id: string;
  dataDir: string;
  port: number;
  peers: Record<string, number>;
  timing: RaftTiming;
  snapshotEveryEntries?: number;
}

const config = JSON.parse(process.argv[2] ?? '') as NodeProcessConfig;
const logger = createLogger({ level: process.env.PGWARD_LOG_LEVEL ?? 'warn', fields: { node: config.id } });
const sm = new MemoryStateMachine();
const driver = new RaftDriver({
  id: config.id,
  timing: config.timing,
  dataDir: config.dataDir,
  bootstrap: { voters: [config.id, ...Object.keys(config.peers)].sort(), witnesses: [], learners: [] },
  listen: { host: '127.0.0.1', port: config.port },
  peers: new Map(Object.entries(config.peers).map(([id, port]) => [id, { host: '127.0.0.1', port }])),
  clusterId: 'process-test',
  secret: 'process-test-secret-0123456789',
  logger,
  stateMachine: sm,
  ...(config.snapshotEveryEntries !== undefined ? { snapshotEveryEntries: config.snapshotEveryEntries } : {}),
});

function emit(line: object): void {
  process.stdout.write(`${JSON.stringify(line, (_, v) => (typeof v === 'bigint' ? String(v) : v))}\n`);
}

function summary() {
  const s = driver.status();
  return {
    role: s.role,
    term: s.term,
    leader: s.leader,
    commit: s.commit,
    lastIndex: s.lastIndex,
    leased: driver.isLeaderWithLease(),
    applied: sm.applied,
    stalls: s.driver.stalls,
  };
}

async function bench(count: number): Promise<number[]> {
  const latenciesMs: number[] = [];
  for (let i = 0; i < count; i++) {
    const startMs = performance.now();
    await driver.propose(Buffer.from(`bench-${i}`));
    latenciesMs.push(performance.now() - startMs);
  }
  return latenciesMs;
}

async function handle(line: string): Promise<void> {
  const [id, command, ...rest] = line.split(' ');
  try {
    if (command === 'propose')
      emit({ id, ok: true, index: await driver.propose(Buffer.from(rest.join(' '))) });
    else if (command === 'status') emit({ id, ok: true, status: summary() });
    else if (command === 'bench') emit({ id, ok: true, latenciesMs: await bench(Number(rest[0])) });
    else emit({ id, ok: false, error: `unknown command ${command}` });
  } catch (error) {
    emit({ id, ok: false, error: error instanceof Error ? error.message : String(error) });
  }
}

try {
  await driver.start();
} catch (error) {
  process.stderr.write(
    `raft node failed to start: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(2);
}
emit({ event: 'started', status: summary() });
driver.onChange((change) => emit({ event: 'change', wallMs: Date.now(), ...change }));
// Leadership is useless to the application until the lease is valid: report when it is.
let leased = false;
setInterval(() => {
  const now = driver.isLeaderWithLease();
  if (now !== leased) emit({ event: 'lease', wallMs: Date.now(), leased: now, term: driver.status().term });
  leased = now;
}, 5);
readline.createInterface({ input: process.stdin }).on('line', (line) => void handle(line));
process.stdin.on('end', () => void driver.stop().then(() => process.exit(0)));
driver.done.catch((error: unknown) => {
  process.stderr.write(`raft node failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
