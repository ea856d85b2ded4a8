// A proxy-owned query: its answers are swallowed by the proxy and decoded into a
// result instead of reaching the client. Used for session-state replay, DISCARD ALL
// and the exactly-once layer's fence and ledger statements.

import {
  decodeCommandComplete,
  decodeDataRow,
  decodeErrorResponse,
  decodeRowDescription,
} from '../wire/backend.ts';
import type { MessageView } from '../wire/framer.ts';
import { buildBind, buildDescribe, buildExecute, buildParse, buildQuery, FLUSH } from '../wire/frontend.ts';
import { BackendMessage, TargetKind } from '../wire/protocol.ts';
import { OwnedQueryError, type OwnedQueryResult } from './hooks.ts';
import type { ResponseOwner } from './response-tracker.ts';

/** Largest result a proxy-owned query may return: it is held in memory whole. */
const MAX_OWNED_RESULT_BYTES = 16 * 1024 * 1024;

function view(message: Buffer): MessageView {
  return { buffer: message, bodyStart: 5, end: message.length };
}

/** Collects the answers of the `expected` messages one owned query sent, then settles. */
export class OwnedQueryCollector implements ResponseOwner {
  readonly toClient = false;
  readonly result: Promise<OwnedQueryResult>;
  private resolve!: (result: OwnedQueryResult) => void;
  private reject!: (error: Error) => void;
  private columns: string[] = [];
  private readonly rows: (string | null)[][] = [];
  private commandTag: string | null = null;
  private error: OwnedQueryError | null = null;
  private skipped = false;
  private bytes = 0;

  constructor(private remaining: number) {
    this.result = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  onMessage(type: number, message: Buffer): void {
    if (this.error !== null) return;
    this.bytes += message.length;
    if (this.bytes > MAX_OWNED_RESULT_BYTES) {
      this.error = new OwnedQueryError(
        '54000',
        `proxy-owned query result is over ${MAX_OWNED_RESULT_BYTES} bytes`,
      );
      return;
    }
    switch (type) {
      case BackendMessage.RowDescription:
        this.columns = decodeRowDescription(view(message)).map((f) => f.name);
        break;
      case BackendMessage.DataRow:
        this.rows.push(decodeDataRow(view(message)).map((v) => (v === null ? null : v.toString('utf8'))));
        break;
      case BackendMessage.CommandComplete:
        this.commandTag = decodeCommandComplete(view(message));
        break;
      case BackendMessage.ErrorResponse: {
        const fields = decodeErrorResponse(view(message));
        this.error = new OwnedQueryError(fields.code, fields.message);
        break;
      }
    }
  }

  /** A streamed (oversized) row reached this query: the result cannot be held. */
  oversized(): void {
    this.error ??= new OwnedQueryError('54000', 'proxy-owned query returned a row too large to hold');
  }

  onDone(skipped: boolean): void {
    if (skipped) this.skipped = true;
    this.remaining -= 1;
    if (this.remaining > 0) return;
    if (this.error !== null) this.reject(this.error);
    else if (this.skipped) {
      this.reject(
        new OwnedQueryError('25P02', 'proxy-owned query skipped: an earlier statement of the batch failed'),
      );
    } else this.resolve({ commandTag: this.commandTag, columns: this.columns, rows: this.rows });
  }

  /** The connection died: the query never completed. */
  fail(error: Error): void {
    this.error ??= new OwnedQueryError('08006', error.message);
  }
}

/** Messages for a simple-protocol owned query: one Query, answered up to ReadyForQuery. */
export function simpleQueryMessages(sql: string): { messages: Buffer[]; types: number[] } {
  return { messages: [buildQuery(sql)], types: [0x51] };
}

/**
 * Messages for an extended-protocol owned query inside an unfinished client batch:
 * unnamed statement and portal, text parameters, answered at once thanks to Flush.
 */
export function extendedQueryMessages(
  sql: string,
  params: readonly (string | null)[],
): { messages: Buffer[]; types: number[] } {
  const messages = [
    buildParse({ statement: '', sql, paramTypes: [] }),
    buildBind({
      portal: '',
      statement: '',
      paramFormats: [],
      params: params.map((p) => (p === null ? null : Buffer.from(p, 'utf8'))),
      resultFormats: [],
    }),
    buildDescribe(TargetKind.Portal, ''),
    buildExecute('', 0),
    FLUSH,
  ];
  return { messages, types: [0x50, 0x42, 0x44, 0x45] };
}
