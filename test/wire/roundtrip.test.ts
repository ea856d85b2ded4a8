// Property tests: every builder's output decodes back to its input, and the framer returns the
// same messages however the stream is cut. Replay a failure with FC_SEED=<seed>.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import * as backend from '../../src/wire/backend.ts';
import { ProtocolError } from '../../src/wire/errors.ts';
import { MessageFramer } from '../../src/wire/framer.ts';
import * as frontend from '../../src/wire/frontend.ts';
import { TargetKind } from '../../src/wire/protocol.ts';
import { buildStartupMessage, parseStartupPacket } from '../../src/wire/startup.ts';
import { frameAll } from './support.ts';
import { typedView, untypedView } from './support-view.ts';

const seed = Number(process.env.FC_SEED ?? Date.now() % 2 ** 31);
const params = { seed, numRuns: 300 };
console.log(`# wire round-trip property seed ${seed} (replay: FC_SEED=${seed})`);

/** Protocol strings: any Unicode without NUL (NUL terminates them on the wire). */
const text = fc.string({ unit: 'grapheme', maxLength: 40 }).filter((s) => !s.includes('\0'));
const int16 = fc.integer({ min: -32768, max: 32767 });
const int32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
const oid = fc.integer({ min: 0, max: 2 ** 32 - 1 });
const value = fc.option(
  fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
  { nil: null },
);
const formats = fc.array(fc.constantFrom(0, 1), { maxLength: 5 });

const parseArb = fc.record({ statement: text, sql: text, paramTypes: fc.array(oid, { maxLength: 8 }) });
const bindArb = fc.record({
  portal: text,
  statement: text,
  paramFormats: formats,
  params: fc.array(value, { maxLength: 8 }),
  resultFormats: formats,
});
const errorArb = fc.record(
  {
    severity: text,
    severityNonLocalized: text,
    code: text,
    message: text,
    detail: text,
    hint: text,
    position: text,
    where: text,
    schema: text,
    table: text,
    column: text,
    constraint: text,
    file: text,
    line: text,
    routine: text,
  },
  { requiredKeys: ['severity', 'severityNonLocalized', 'code', 'message'] },
);
const fieldArb = fc.record({
  name: text,
  tableOid: oid,
  columnAttr: int16,
  typeOid: oid,
  typeSize: int16,
  typeModifier: int32,
  format: fc.constantFrom(0, 1),
});

/** Any message the codec can build, as bytes. */
const anyMessage: fc.Arbitrary<Buffer> = fc.oneof(
  text.map(frontend.buildQuery),
  parseArb.map(frontend.buildParse),
  bindArb.map(frontend.buildBind),
  fc.tuple(text, int32).map(([p, n]) => frontend.buildExecute(p, n)),
  fc.constant(frontend.SYNC),
  fc.constant(frontend.FLUSH),
  fc.uint8Array({ maxLength: 300 }).map(frontend.buildCopyData),
  errorArb.map(backend.buildErrorResponse),
  fc.array(fc.option(text, { nil: null }), { maxLength: 6 }).map(backend.buildDataRow),
  fc.constant(backend.READY_FOR_QUERY_IDLE),
);

describe('wire round trips (fast-check)', () => {
  it('frontend builders decode back to their input', () => {
    fc.assert(
      fc.property(
        parseArb,
        bindArb,
        text,
        fc.tuple(text, int32),
        (rawParse, rawBind, sql, [portal, maxRows]) => {
          const parse = { ...rawParse };
          const bind = { ...rawBind };
          assert.deepEqual(frontend.decodeParse(typedView(frontend.buildParse(parse))), parse);
          assert.deepEqual(frontend.decodeBind(typedView(frontend.buildBind(bind))), bind);
          assert.equal(frontend.decodeQuery(typedView(frontend.buildQuery(sql))), sql);
          assert.deepEqual(frontend.decodeExecute(typedView(frontend.buildExecute(portal, maxRows))), {
            portal,
            maxRows,
          });
          const described = frontend.decodeDescribe(
            typedView(frontend.buildDescribe(TargetKind.Portal, portal)),
          );
          assert.deepEqual(described, { target: TargetKind.Portal, name: portal });
          const call = {
            functionOid: parse.paramTypes[0] ?? 0,
            argFormats: bind.paramFormats,
            args: bind.params,
            resultFormat: 1,
          };
          assert.deepEqual(frontend.decodeFunctionCall(typedView(frontend.buildFunctionCall(call))), call);
        },
      ),
      params,
    );
  });

  it('backend builders decode back to their input', () => {
    fc.assert(
      fc.property(
        errorArb,
        fc.array(fieldArb, { maxLength: 5 }),
        fc.array(value, { maxLength: 6 }),
        text,
        text,
        int32,
        int32,
        (error, rawFields, row, name, val, pid, secret) => {
          const fields = rawFields.map((f) => ({ ...f }));
          assert.deepEqual(backend.decodeErrorResponse(typedView(backend.buildErrorResponse(error))), {
            ...error,
          });
          assert.deepEqual(backend.decodeNoticeResponse(typedView(backend.buildNoticeResponse(error))), {
            ...error,
          });
          assert.deepEqual(
            backend.decodeRowDescription(typedView(backend.buildRowDescription(fields))),
            fields,
          );
          assert.deepEqual(backend.decodeDataRow(typedView(backend.buildDataRow(row))), row);
          assert.deepEqual(
            backend.decodeParameterStatus(typedView(backend.buildParameterStatus(name, val))),
            {
              name,
              value: val,
            },
          );
          assert.deepEqual(
            backend.decodeBackendKeyData(typedView(backend.buildBackendKeyData(pid, secret))),
            {
              processId: pid,
              secretKey: secret,
            },
          );
        },
      ),
      params,
    );
  });

  it('StartupMessage parameters survive a round trip', () => {
    const nonEmpty = text.filter((s) => s !== '' && !s.startsWith('_pq_.'));
    fc.assert(
      fc.property(nonEmpty, fc.dictionary(nonEmpty, text, { maxKeys: 6 }), (user, extra) => {
        const wanted = new Map([['user', user], ['database', 'db'], ...Object.entries(extra)]);
        const packet = buildStartupMessage(wanted);
        fc.pre(packet.length <= 10000);
        const parsed = parseStartupPacket(untypedView(packet));
        assert.ok(parsed.kind === 'startup');
        const expected = new Map(wanted);
        if (expected.get('database') === '') expected.set('database', expected.get('user')!);
        assert.deepEqual(parsed.params, expected);
      }),
      params,
    );
  });

  it('the framer returns the same messages however the stream is cut', () => {
    fc.assert(
      fc.property(
        fc.array(anyMessage, { minLength: 1, maxLength: 12 }),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 20 }),
        fc.option(fc.integer({ min: 5, max: 200 }), { nil: undefined }),
        (messages, cuts, streamThresholdBytes) => {
          const stream = Buffer.concat(messages);
          const chunks: Buffer[] = [];
          for (let at = 0, i = 0; at < stream.length; i++) {
            const size = cuts[i % cuts.length]!;
            chunks.push(stream.subarray(at, at + size));
            at += size;
          }
          const options =
            streamThresholdBytes === undefined
              ? { maxMessageBytes: 1 << 20 }
              : { maxMessageBytes: 1 << 20, streamThresholdBytes };
          assert.deepEqual(frameAll(chunks, options).messages, messages);
        },
      ),
      params,
    );
  });

  it('the framer meets arbitrary bytes with ProtocolError or waiting, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (bytes, startup) => {
        const framer = new MessageFramer({ maxMessageBytes: 1000, startup, streamThresholdBytes: 50 });
        framer.push(Buffer.from(bytes));
        try {
          while (framer.next() !== null);
        } catch (error) {
          assert.ok(error instanceof ProtocolError, String(error));
        }
      }),
      params,
    );
  });
});
