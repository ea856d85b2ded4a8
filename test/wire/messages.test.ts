import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as backend from '../../src/wire/backend.ts';
import { ProtocolError } from '../../src/wire/errors.ts';
import * as frontend from '../../src/wire/frontend.ts';
import { AuthenticationCode, TargetKind, TransactionStatus } from '../../src/wire/protocol.ts';
import { BACKEND_SAMPLES as B, cstr, FRONTEND_SAMPLES as F, i16, i32, typed } from './fixtures.ts';
import { typedView as v } from './support-view.ts';

describe('frontend messages', () => {
  it('decode the hand-assembled samples', () => {
    assert.equal(frontend.decodeQuery(v(F.Query!)), 'select 1');
    assert.deepEqual(frontend.decodeParse(v(F.Parse!)), {
      statement: 's1',
      sql: 'select $1::int',
      paramTypes: [23],
    });
    assert.deepEqual(frontend.decodeBind(v(F.Bind!)), {
      portal: 'p1',
      statement: 's1',
      paramFormats: [0],
      params: [Buffer.from('7'), null],
      resultFormats: [1],
    });
    assert.deepEqual(frontend.decodeBindNames(v(F.Bind!)), { portal: 'p1', statement: 's1' });
    assert.deepEqual(frontend.decodeExecute(v(F.Execute!)), { portal: 'p1', maxRows: 10 });
    assert.deepEqual(frontend.decodeDescribe(v(F.Describe!)), { target: TargetKind.Statement, name: 's1' });
    assert.deepEqual(frontend.decodeClose(v(F.Close!)), { target: TargetKind.Portal, name: 'p1' });
    assert.deepEqual(frontend.decodeCopyData(v(F.CopyData!)), Buffer.from('1\tone\n'));
    assert.equal(frontend.decodeCopyFail(v(F.CopyFail!)), 'aborted by client');
    assert.deepEqual(frontend.decodeFunctionCall(v(F.FunctionCall!)), {
      functionOid: 1598,
      argFormats: [0],
      args: [Buffer.from('42')],
      resultFormat: 0,
    });
    assert.equal(frontend.decodePasswordMessage(v(F.PasswordMessage!)), 'secret');
    assert.deepEqual(frontend.decodeSASLInitialResponse(v(F.SASLInitialResponse!)), {
      mechanism: 'SCRAM-SHA-256',
      data: Buffer.from('n,,n=,r='),
    });
    assert.deepEqual(frontend.decodeSASLResponse(v(F.SASLResponse!)), Buffer.from('c=biws,r=abc,p=xyz'));
    for (const empty of [F.Sync!, F.Flush!, F.Terminate!, F.CopyDone!])
      frontend.expectEmptyBody(v(empty), 'x');
  });

  it('build the same bytes', () => {
    assert.deepEqual(frontend.buildQuery('select 1'), F.Query);
    assert.deepEqual(
      frontend.buildParse({ statement: 's1', sql: 'select $1::int', paramTypes: [23] }),
      F.Parse,
    );
    assert.deepEqual(frontend.buildBind(frontend.decodeBind(v(F.Bind!))), F.Bind);
    assert.deepEqual(frontend.buildExecute('p1', 10), F.Execute);
    assert.deepEqual(frontend.buildDescribe(TargetKind.Statement, 's1'), F.Describe);
    assert.deepEqual(frontend.buildClose(TargetKind.Portal, 'p1'), F.Close);
    assert.deepEqual(frontend.SYNC, F.Sync);
    assert.deepEqual(frontend.FLUSH, F.Flush);
    assert.deepEqual(frontend.TERMINATE, F.Terminate);
    assert.deepEqual(frontend.COPY_DONE, F.CopyDone);
    assert.deepEqual(frontend.buildCopyData(Buffer.from('1\tone\n')), F.CopyData);
    assert.deepEqual(frontend.buildCopyFail('aborted by client'), F.CopyFail);
    assert.deepEqual(
      frontend.buildFunctionCall(frontend.decodeFunctionCall(v(F.FunctionCall!))),
      F.FunctionCall,
    );
    assert.deepEqual(frontend.buildPasswordMessage('secret'), F.PasswordMessage);
    assert.deepEqual(
      frontend.buildSASLInitialResponse('SCRAM-SHA-256', Buffer.from('n,,n=,r=')),
      F.SASLInitialResponse,
    );
    assert.deepEqual(frontend.buildSASLResponse(Buffer.from('c=biws,r=abc,p=xyz')), F.SASLResponse);
  });

  it('reject malformed bodies with ProtocolError, never reading past the message', () => {
    const bad: Array<[string, () => unknown]> = [
      ['Query without NUL', () => frontend.decodeQuery(v(typed('Q', Buffer.from('select 1'))))],
      [
        'Parse with too many types',
        () => frontend.decodeParse(v(typed('P', cstr(''), cstr('x'), i16(9), i32(1)))),
      ],
      [
        'Parse with a negative count',
        () => frontend.decodeParse(v(typed('P', cstr(''), cstr('x'), i16(-1)))),
      ],
      [
        'Bind value longer than the message',
        () => frontend.decodeBind(v(typed('B', cstr(''), cstr(''), i16(0), i16(1), i32(100)))),
      ],
      [
        'Bind value length -2',
        () => frontend.decodeBind(v(typed('B', cstr(''), cstr(''), i16(0), i16(1), i32(-2), i16(0)))),
      ],
      ['Describe of kind X', () => frontend.decodeDescribe(v(typed('D', Buffer.from('X'), cstr('a'))))],
      ['Execute cut short', () => frontend.decodeExecute(v(typed('E', cstr(''), i16(0))))],
      ['Sync with a body', () => frontend.expectEmptyBody(v(typed('S', Buffer.from('x'))), 'Sync')],
      [
        'SASLInitialResponse cut short',
        () => frontend.decodeSASLInitialResponse(v(typed('p', cstr('SCRAM-SHA-256'), i32(10)))),
      ],
    ];
    for (const [what, decode] of bad) {
      assert.throws(decode, ProtocolError, what);
    }
  });

  it('know which type bytes a client may send', () => {
    assert.equal(frontend.isFrontendMessageType(0x51), true);
    assert.equal(frontend.isFrontendMessageType(0x5a), false);
    assert.equal(frontend.isFrontendMessageType(0), false);
  });
});

describe('backend messages', () => {
  it('build the hand-assembled samples', () => {
    assert.deepEqual(backend.AUTHENTICATION_OK, B.AuthenticationOk);
    assert.deepEqual(backend.buildAuthenticationCleartextPassword(), B.AuthenticationCleartextPassword);
    assert.deepEqual(
      backend.buildAuthenticationMD5Password(Buffer.from([1, 2, 3, 4])),
      B.AuthenticationMD5Password,
    );
    assert.deepEqual(backend.buildAuthenticationSASL(['SCRAM-SHA-256']), B.AuthenticationSASL);
    assert.deepEqual(
      backend.buildAuthenticationSASLContinue(Buffer.from('r=abc,s=c2FsdA==,i=4096')),
      B.AuthenticationSASLContinue,
    );
    assert.deepEqual(backend.buildAuthenticationSASLFinal(Buffer.from('v=c2ln')), B.AuthenticationSASLFinal);
    assert.deepEqual(backend.buildParameterStatus('server_version', '15.18'), B.ParameterStatus);
    assert.deepEqual(backend.buildBackendKeyData(4242, -17), B.BackendKeyData);
    assert.deepEqual(backend.READY_FOR_QUERY_IDLE, B.ReadyForQuery);
    assert.deepEqual(backend.buildCommandComplete('SELECT 1'), B.CommandComplete);
    assert.deepEqual(
      backend.buildRowDescription([
        { name: 'n', tableOid: 0, columnAttr: 0, typeOid: 23, typeSize: 4, typeModifier: -1, format: 0 },
      ]),
      B.RowDescription,
    );
    assert.deepEqual(backend.buildDataRow(['1', null]), B.DataRow);
    assert.deepEqual(backend.EMPTY_QUERY_RESPONSE, B.EmptyQueryResponse);
    assert.deepEqual(backend.PARSE_COMPLETE, B.ParseComplete);
    assert.deepEqual(backend.BIND_COMPLETE, B.BindComplete);
    assert.deepEqual(backend.CLOSE_COMPLETE, B.CloseComplete);
    assert.deepEqual(backend.NO_DATA, B.NoData);
    assert.deepEqual(backend.buildNegotiateProtocolVersion(0, ['_pq_.x']), B.NegotiateProtocolVersion);
  });

  it('build an ErrorResponse with every field, in PostgreSQL order, V defaulting to S', () => {
    const bytes = backend.buildFatalError('08P01', 'bad', 'the detail', 'the hint');
    const expected = typed(
      'E',
      ...['S', 'FATAL', 'V', 'FATAL', 'C', '08P01', 'M', 'bad', 'D', 'the detail', 'H', 'the hint'].map(
        (s, i) => (i % 2 === 0 ? Buffer.from(s) : cstr(s)),
      ),
      Buffer.from([0]),
    );
    assert.deepEqual(bytes, expected);
  });

  it('decode the samples, keeping error fields verbatim', () => {
    assert.deepEqual(backend.decodeAuthentication(v(B.AuthenticationOk!)), { code: AuthenticationCode.Ok });
    assert.deepEqual(backend.decodeAuthentication(v(B.AuthenticationMD5Password!)), {
      code: AuthenticationCode.MD5Password,
      salt: Buffer.from([1, 2, 3, 4]),
    });
    assert.deepEqual(backend.decodeAuthentication(v(B.AuthenticationSASL!)), {
      code: AuthenticationCode.SASL,
      mechanisms: ['SCRAM-SHA-256'],
    });
    assert.deepEqual(backend.decodeAuthentication(v(B.AuthenticationSASLFinal!)), {
      code: AuthenticationCode.SASLFinal,
      data: Buffer.from('v=c2ln'),
    });
    assert.deepEqual(backend.decodeParameterStatus(v(B.ParameterStatus!)), {
      name: 'server_version',
      value: '15.18',
    });
    assert.deepEqual(backend.decodeBackendKeyData(v(B.BackendKeyData!)), { processId: 4242, secretKey: -17 });
    assert.equal(backend.decodeReadyForQuery(v(B.ReadyForQuery!)), TransactionStatus.Idle);
    assert.equal(backend.decodeCommandComplete(v(B.CommandComplete!)), 'SELECT 1');
    assert.deepEqual(backend.decodeDataRow(v(B.DataRow!)), [Buffer.from('1'), null]);
    assert.equal(backend.decodeRowDescription(v(B.RowDescription!))[0]?.typeOid, 23);
    assert.deepEqual(backend.decodeErrorResponse(v(B.ErrorResponse!)), {
      severity: 'ERROR',
      code: '42P01',
      message: 'no such table',
    });
    assert.deepEqual(backend.decodeNotificationResponse(v(B.NotificationResponse!)), {
      processId: 99,
      channel: 'chan',
      payload: 'payload',
    });
    assert.deepEqual(backend.decodeNegotiateProtocolVersion(v(B.NegotiateProtocolVersion!)), {
      newestMinor: 0,
      unsupportedOptions: ['_pq_.x'],
    });
    const unknownField = typed(
      'N',
      Buffer.from('S'),
      cstr('NOTICE'),
      Buffer.from('Z'),
      cstr('future'),
      Buffer.from([0]),
    );
    assert.deepEqual(backend.decodeNoticeResponse(v(unknownField)), {
      severity: 'NOTICE',
      code: '',
      message: '',
      other: { Z: 'future' },
    });
  });

  it('reject malformed server messages with ProtocolError', () => {
    assert.throws(() => backend.decodeReadyForQuery(v(typed('Z', Buffer.from('X')))), ProtocolError);
    assert.throws(() => backend.decodeAuthentication(v(typed('R', i32(99)))), ProtocolError);
    assert.throws(() => backend.decodeAuthentication(v(typed('R', i32(5), Buffer.from([1])))), ProtocolError);
    assert.throws(
      () => backend.decodeErrorResponse(v(typed('E', Buffer.from('S'), cstr('ERROR')))),
      ProtocolError,
    );
    assert.throws(
      () => backend.decodeDataRow(v(typed('D', i16(1), i32(5), Buffer.from('ab')))),
      ProtocolError,
    );
    assert.throws(() => backend.decodeBackendKeyData(v(typed('K', i32(1)))), ProtocolError);
  });
});
