import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeFrame, FrameReader } from '../../src/raft/transport/frame.ts';

const SECRET = 'frame-test-secret-0123';
const acceptance = { clusterId: 'c', self: 'b', isKnownPeer: (name: string) => name === 'a' };

function frames(): Buffer {
  return Buffer.concat(
    ['one', '', 'three'].map((text) =>
      encodeFrame({ clusterId: 'c', from: 'a', to: 'b', payload: Buffer.from(text) }, SECRET),
    ),
  );
}

test('frames split at every pair of chunk boundaries decode the same', () => {
  const stream = frames();
  for (let i = 0; i <= stream.length; i++) {
    for (let j = i; j <= stream.length; j += 7) {
      const reader = new FrameReader(SECRET, 1024, acceptance);
      const got = [stream.subarray(0, i), stream.subarray(i, j), stream.subarray(j)].flatMap((chunk) => {
        const { frames, rejection } = reader.push(chunk);
        assert.equal(rejection, null);
        return frames.map((f) => Buffer.from(f.payload).toString());
      });
      assert.deepStrictEqual(got, ['one', '', 'three'], `split at ${i}/${j}`);
    }
  }
});

test('every flipped byte of a frame is rejected, never delivered', () => {
  const frame = encodeFrame({ clusterId: 'c', from: 'a', to: 'b', payload: Buffer.from('payload') }, SECRET);
  for (let offset = 4; offset < frame.length; offset++) {
    const damaged = Buffer.from(frame);
    damaged[offset]! ^= 0x01;
    const { frames, rejection } = new FrameReader(SECRET, 1024, acceptance).push(damaged);
    assert.deepStrictEqual(frames, [], `flip at ${offset}`);
    assert.notEqual(rejection, null, `flip at ${offset}`);
  }
});

test('a reader stays closed after a rejection', () => {
  const reader = new FrameReader(SECRET, 16, acceptance);
  assert.equal(reader.push(frames()).rejection, 'oversize');
  const again = reader.push(
    encodeFrame({ clusterId: 'c', from: 'a', to: 'b', payload: Buffer.of() }, SECRET),
  );
  assert.deepStrictEqual(again, { frames: [], rejection: 'oversize' });
});
