import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProtocolError } from '../../src/wire/errors.ts';
import { FrameKind, MessageFramer } from '../../src/wire/framer.ts';
import { BACKEND_SAMPLES, FRONTEND_SAMPLES, i32, STARTUP_SAMPLES, typed } from './fixtures.ts';
import { frameAll } from './support.ts';

const LIMIT = { maxMessageBytes: 1 << 20 };

/** Every way to cut `bytes` into two chunks, and into three around each byte. */
function* splits(bytes: Buffer): Generator<Buffer[]> {
  for (let i = 0; i <= bytes.length; i++) yield [bytes.subarray(0, i), bytes.subarray(i)];
  for (let i = 1; i < bytes.length; i++) {
    yield [bytes.subarray(0, i), bytes.subarray(i, i + 1), bytes.subarray(i + 1)];
  }
}

function checkEverySplit(
  name: string,
  message: Buffer,
  startupPackets: number,
  prev: Buffer,
  next: Buffer,
): void {
  const stream = Buffer.concat([prev, message, next]);
  const expected = [prev, message, next].filter((b) => b.length > 0);
  for (const chunks of splits(stream)) {
    for (const options of [LIMIT, { ...LIMIT, streamThresholdBytes: 6 }]) {
      const { messages } = frameAll(chunks, options, startupPackets);
      assert.deepEqual(
        messages,
        expected,
        `${name} split as ${chunks.map((c) => c.length).join('+')} (${JSON.stringify(options)})`,
      );
    }
  }
}

describe('MessageFramer', () => {
  const neighbour = typed('S');
  for (const [name, message] of Object.entries({ ...FRONTEND_SAMPLES, ...BACKEND_SAMPLES })) {
    it(`frames ${name} split at every chunk boundary, alone and merged with its neighbours`, () => {
      checkEverySplit(name, message, 0, Buffer.alloc(0), Buffer.alloc(0));
      checkEverySplit(name, message, 0, neighbour, neighbour);
      checkEverySplit(name, message, 0, message, message);
    });
  }

  for (const [name, packet] of Object.entries(STARTUP_SAMPLES)) {
    it(`frames startup packet ${name} at every boundary, followed by typed messages`, () => {
      checkEverySplit(name, packet, 1, Buffer.alloc(0), FRONTEND_SAMPLES.Query!);
    });
  }

  it('reads several startup packets when re-armed (SSLRequest answered N, then StartupMessage)', () => {
    const stream = Buffer.concat([STARTUP_SAMPLES.SSLRequest!, STARTUP_SAMPLES.StartupMessage!, typed('X')]);
    for (const chunks of splits(stream)) {
      assert.deepEqual(frameAll(chunks, LIMIT, 2).messages, [
        STARTUP_SAMPLES.SSLRequest,
        STARTUP_SAMPLES.StartupMessage,
        typed('X'),
      ]);
    }
  });

  it('returns whole messages as views into the pushed chunk, without copying', () => {
    const chunk = Buffer.concat([typed('Q', Buffer.from('a\0')), typed('S')]);
    const framer = new MessageFramer(LIMIT);
    framer.push(chunk);
    const first = framer.next();
    const second = framer.next();
    assert.ok(first?.kind === FrameKind.Message && second?.kind === FrameKind.Message);
    assert.equal(first.buffer, chunk);
    assert.equal(second.buffer, chunk);
    assert.deepEqual([first.start, first.bodyStart, first.end], [0, 5, 7]);
    assert.deepEqual([second.start, second.end], [7, 12]);
    assert.equal(framer.next(), null);
    assert.equal(framer.bufferedBytes, 0);
  });

  it('streams a large message in pieces without holding it whole, and never rewrites handed-out bytes', () => {
    const rowBytes = 4 * 1024 * 1024;
    const row = Buffer.alloc(rowBytes + 5, 7);
    row[0] = 0x44;
    row.writeInt32BE(rowBytes + 4, 1);
    const framer = new MessageFramer({ maxMessageBytes: 64 << 20, streamThresholdBytes: 64 * 1024 });
    const stream = Buffer.concat([typed('Z', Buffer.from('I')), row, typed('C', Buffer.from('SELECT 1\0'))]);
    const handedOut: Buffer[] = [];
    let largestPiece = 0;
    let sawStart = false;
    for (let at = 0; at < stream.length; at += 65536) {
      framer.push(Buffer.from(stream.subarray(at, at + 65536)));
      for (let frame = framer.next(); frame !== null; frame = framer.next()) {
        if (frame.kind === FrameKind.Message) {
          handedOut.push(frame.buffer.subarray(frame.start, frame.end));
          continue;
        }
        if (frame.kind === FrameKind.StreamStart) {
          sawStart = true;
          assert.equal(frame.totalBytes, row.length);
        }
        largestPiece = Math.max(largestPiece, frame.bytes.length);
        handedOut.push(frame.bytes);
      }
    }
    assert.ok(sawStart);
    assert.ok(largestPiece <= 65536, `largest piece ${largestPiece}`);
    assert.deepEqual(Buffer.concat(handedOut), stream);
    assert.equal(framer.streaming, false);
  });

  it('streams only the types it is told to, buffering the rest whole', () => {
    const big = typed('E', Buffer.alloc(300, 1));
    const chunks = [big.subarray(0, 100), big.subarray(100)];
    const onlyDataRows = { ...LIMIT, streamThresholdBytes: 10, streamable: (t: number) => t === 0x44 };
    assert.deepEqual(frameAll(chunks, onlyDataRows), { messages: [big], streamed: 0 });
    assert.deepEqual(frameAll(chunks, { ...LIMIT, streamThresholdBytes: 10 }), {
      messages: [big],
      streamed: 1,
    });
  });

  describe('rejects bad lengths before allocating, with a typed 08P01 error', () => {
    const cases: Array<[string, Buffer, boolean]> = [
      ['a typed length under 4', Buffer.concat([Buffer.from('Q'), i32(3)]), false],
      ['a negative typed length', Buffer.concat([Buffer.from('Q'), i32(-1)]), false],
      ['a typed length over the limit', Buffer.concat([Buffer.from('D'), i32((1 << 20) + 1)]), false],
      ['a startup length under 8', i32(7), true],
      ['a startup length over 10000', i32(10001), true],
      ['a startup length of 2^31-1', i32(0x7fffffff), true],
    ];
    for (const [what, bytes, startup] of cases) {
      it(what, () => {
        const framer = new MessageFramer({ ...LIMIT, startup });
        framer.push(bytes);
        assert.throws(
          () => framer.next(),
          (e: unknown) => e instanceof ProtocolError && e.code === '08P01',
        );
        // A failed framer stays failed: no resynchronising on garbage.
        assert.throws(() => framer.next(), ProtocolError);
      });
    }
  });

  it('keeps unread bytes countable, so bytes sent after SSLRequest can be refused', () => {
    const framer = new MessageFramer({ ...LIMIT, startup: true });
    framer.push(Buffer.concat([STARTUP_SAMPLES.SSLRequest!, Buffer.from([0x16, 0x03])]));
    assert.equal(framer.next()?.kind, FrameKind.Message);
    assert.equal(framer.bufferedBytes, 2);
  });

  it('accepts pushes before the previous chunk was drained', () => {
    const framer = new MessageFramer(LIMIT);
    framer.push(typed('S'));
    framer.push(typed('H'));
    const types: number[] = [];
    for (let f = framer.next(); f !== null; f = framer.next()) types.push(f.type);
    assert.deepEqual(types, [0x53, 0x48]);
  });
});
