import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { formatLsn, lagBytes, parseLsn, parseLsnOrNull } from '../../src/postgres/lsn.ts';

test('parses and formats PostgreSQL LSNs', () => {
  assert.equal(parseLsn('0/3000060'), 0x3000060n);
  assert.equal(parseLsn('16/B374D848'), (0x16n << 32n) | 0xb374d848n);
  assert.equal(parseLsn('ffffffff/ffffffff'), 0xffffffffffffffffn);
  assert.equal(formatLsn(0x3000060n), '0/3000060');
  assert.equal(formatLsn((0x16n << 32n) | 0xb374d848n), '16/B374D848');
  assert.equal(parseLsnOrNull(null), null);
});

test('rejects malformed LSNs', () => {
  for (const bad of ['', '0', '0/', '/1', '0/1/2', 'g/1', '123456789/0', ' 0/1']) {
    assert.throws(() => parseLsn(bad), /invalid LSN/, bad);
  }
  assert.throws(() => formatLsn(-1n), RangeError);
  assert.throws(() => formatLsn(1n << 64n), RangeError);
});

test('format and parse are inverse over the whole 64-bit range', () => {
  const seed = Number(process.env.FC_SEED ?? Date.now() % 2 ** 31);
  console.log(`lsn property seed=${seed} (replay with FC_SEED=${seed})`);
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: 0xffffffffffffffffn }), (lsn) => parseLsn(formatLsn(lsn)) === lsn),
    { seed },
  );
});

test('lag in bytes is clamped at zero', () => {
  assert.equal(lagBytes(parseLsn('0/3000100'), parseLsn('0/3000060')), 0xa0);
  assert.equal(lagBytes(parseLsn('0/3000060'), parseLsn('0/3000100')), 0);
});
