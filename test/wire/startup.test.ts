import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProtocolError } from '../../src/wire/errors.ts';
import {
  buildCancelRequest,
  buildGSSENCRequest,
  buildSSLRequest,
  buildStartupMessage,
  parseStartupPacket,
} from '../../src/wire/startup.ts';
import { cstr, i32, STARTUP_SAMPLES, untyped } from './fixtures.ts';
import { untypedView } from './support-view.ts';

function parse(packet: Buffer) {
  return parseStartupPacket(untypedView(packet));
}

function rejects(packet: Buffer, code: string, pattern: RegExp): void {
  assert.throws(
    () => parse(packet),
    (e: unknown) => e instanceof ProtocolError && e.code === code && pattern.test(e.message),
  );
}

describe('startup packets', () => {
  it('parses a StartupMessage 3.0 with its parameters in order, including options', () => {
    const packet = untyped(
      i32(196608),
      cstr('user'),
      cstr('alice'),
      cstr('options'),
      cstr('-c search_path=app'),
      cstr('application_name'),
      cstr('psql'),
      cstr(''),
    );
    const parsed = parse(packet);
    assert.equal(parsed.kind, 'startup');
    assert.ok(parsed.kind === 'startup');
    assert.deepEqual(
      [...parsed.params],
      [
        ['user', 'alice'],
        ['options', '-c search_path=app'],
        ['application_name', 'psql'],
        ['database', 'alice'],
      ],
    );
    assert.equal(parsed.needsNegotiation, false);
  });

  it('recognises SSLRequest, GSSENCRequest and CancelRequest', () => {
    assert.deepEqual(parse(STARTUP_SAMPLES.SSLRequest!), { kind: 'ssl' });
    assert.deepEqual(parse(STARTUP_SAMPLES.GSSENCRequest!), { kind: 'gssenc' });
    assert.deepEqual(parse(STARTUP_SAMPLES.CancelRequest!), {
      kind: 'cancel',
      processId: 1234,
      secretKey: 5678,
    });
  });

  it('builds exactly the packets it parses', () => {
    assert.deepEqual(buildSSLRequest(), STARTUP_SAMPLES.SSLRequest);
    assert.deepEqual(buildGSSENCRequest(), STARTUP_SAMPLES.GSSENCRequest);
    assert.deepEqual(buildCancelRequest(1234, 5678), STARTUP_SAMPLES.CancelRequest);
    assert.deepEqual(buildStartupMessage({ user: 'alice', database: 'app' }), STARTUP_SAMPLES.StartupMessage);
  });

  it('asks for NegotiateProtocolVersion on 3.x minor > 0 and on _pq_ options', () => {
    const newer = parse(
      untyped(i32((3 << 16) | 2), cstr('user'), cstr('a'), cstr('_pq_.compression'), cstr('on'), cstr('')),
    );
    assert.ok(newer.kind === 'startup');
    assert.equal(newer.protocolMinor, 2);
    assert.equal(newer.needsNegotiation, true);
    assert.deepEqual(newer.unsupportedProtocolOptions, ['_pq_.compression']);
    assert.equal(newer.params.has('_pq_.compression'), false);
  });

  it('refuses unknown protocol versions with 08P01', () => {
    rejects(
      untyped(i32(2 << 16), cstr('user'), cstr('a'), cstr('')),
      '08P01',
      /unsupported frontend protocol 2\.0/,
    );
    rejects(untyped(i32(4 << 16), cstr('')), '08P01', /unsupported frontend protocol 4\.0/);
    rejects(untyped(i32((1234 << 16) | 9999)), '08P01', /unsupported frontend protocol 1234\.9999/);
  });

  it('refuses malformed packets', () => {
    rejects(untyped(i32(196608), cstr('user'), cstr('a')), '08P01', /final terminator/);
    rejects(untyped(i32(196608), cstr('user'), Buffer.from('a')), '08P01', /NUL/);
    rejects(untyped(i32(196608), cstr('user'), cstr('a'), cstr(''), Buffer.from('x')), '08P01', /trailing/);
    rejects(untyped(i32(80877103), i32(0)), '08P01', /encryption request/);
    rejects(untyped(i32(80877102), i32(1)), '08P01', /cancel request/);
  });

  it('refuses a StartupMessage without a user with 28000', () => {
    rejects(untyped(i32(196608), cstr('database'), cstr('x'), cstr('')), '28000', /no PostgreSQL user name/);
  });
});
