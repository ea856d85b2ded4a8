// What the proxy answers in a transaction block lost to a failover, until ROLLBACK.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AbortedTransaction } from '../../src/proxy/aborted-transaction.ts';
import { FrameKind, type MessageFrame, MessageFramer } from '../../src/wire/framer.ts';
import { buildBind, buildExecute, buildParse, SYNC } from '../../src/wire/frontend.ts';

function types(bytes: Buffer): string {
  const framer = new MessageFramer({ maxMessageBytes: 1 << 20 });
  framer.push(bytes);
  let out = '';
  for (let f = framer.next(); f !== null; f = framer.next())
    if (f.kind === FrameKind.Message) out += String.fromCharCode(f.type);
  return out;
}

function frames(...messages: Buffer[]): MessageFrame[] {
  const framer = new MessageFramer({ maxMessageBytes: 1 << 20 });
  framer.push(Buffer.concat(messages));
  const out: MessageFrame[] = [];
  for (let f = framer.next(); f !== null; f = framer.next()) if (f.kind === FrameKind.Message) out.push(f);
  return out;
}

test('a client idle in the lost transaction hears 40001 first, then 25P02 until ROLLBACK', () => {
  const aborted = new AbortedTransaction(true);
  const first = aborted.answerQuery('ROLLBACK');
  assert.equal(types(first.bytes), 'EZ', 'even ROLLBACK first gets the 40001 the client has not heard yet');
  assert.match(first.bytes.toString('latin1'), /40001/);
  assert.equal(first.ended, false);
  const second = aborted.answerQuery('SELECT 1');
  assert.match(second.bytes.toString('latin1'), /25P02/);
  assert.equal(aborted.answerQuery('rollback;').ended, true);
  assert.equal(aborted.answerQuery('COMMIT').ended, true, 'COMMIT of a failed block is a ROLLBACK');
});

test('extended protocol: a ROLLBACK batch ends the block at Sync; other batches fail once, then ReadyForQuery E', () => {
  const aborted = new AbortedTransaction(false);
  const failing = aborted.answerBatch(
    frames(
      buildParse({ statement: '', sql: 'INSERT INTO t VALUES (1)', paramTypes: [] }),
      buildBind({ portal: '', statement: '', paramFormats: [], params: [], resultFormats: [] }),
      buildExecute(),
      SYNC,
    ),
  );
  assert.equal(types(failing.bytes), 'EZ');
  assert.equal(failing.ended, false);
  const rollback = aborted.answerBatch(
    frames(
      buildParse({ statement: '', sql: 'ROLLBACK', paramTypes: [] }),
      buildBind({ portal: '', statement: '', paramFormats: [], params: [], resultFormats: [] }),
      buildExecute(),
      SYNC,
    ),
  );
  assert.equal(types(rollback.bytes), '12CZ');
  assert.equal(rollback.ended, true);
});
