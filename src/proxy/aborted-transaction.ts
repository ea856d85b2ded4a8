// A transaction block whose backend was lost in a failover: nothing of it committed, and
// the proxy plays PostgreSQL's part for the client until it rolls back: 40001 first,
// then 25P02 for every command, and ROLLBACK (or COMMIT, which PostgreSQL answers with
// ROLLBACK in a failed block) ends it. Pure: frames in, answer bytes out.
import {
  BIND_COMPLETE,
  buildCommandComplete,
  buildErrorResponse,
  buildReadyForQuery,
  CLOSE_COMPLETE,
  NO_DATA,
  PARSE_COMPLETE,
} from '../wire/backend.ts';
import type { MessageFrame } from '../wire/framer.ts';
import { decodeParse } from '../wire/frontend.ts';
import { FrontendMessage, TransactionStatus } from '../wire/protocol.ts';
import { SqlState } from '../wire/sqlstate.ts';

const ENDS_BLOCK = /^\s*(rollback|abort|commit|end)(\s+(work|transaction))?\s*;?\s*$/i;

export function abortedByFailoverError(detail: string): Buffer {
  return buildErrorResponse({
    severity: 'ERROR',
    code: SqlState.SerializationFailure,
    message: 'transaction aborted by failover; nothing was committed',
    detail,
  });
}

export interface AbortedAnswer {
  bytes: Buffer;
  /** The client rolled back: the session is idle again. */
  ended: boolean;
}

export class AbortedTransaction {
  /**
   * @param mustNotify true when the client has not been told yet (it was idle in the
   *   transaction at the failover): its next command gets the 40001.
   */
  constructor(private mustNotify: boolean) {}

  answerQuery(sql: string): AbortedAnswer {
    if (!this.mustNotify && ENDS_BLOCK.test(sql)) {
      return {
        bytes: Buffer.concat([buildCommandComplete('ROLLBACK'), buildReadyForQuery(TransactionStatus.Idle)]),
        ended: true,
      };
    }
    return {
      bytes: Buffer.concat([this.error(), buildReadyForQuery(TransactionStatus.Failed)]),
      ended: false,
    };
  }

  /** An extended batch: a ROLLBACK by Parse/Bind/Execute ends the block at its Sync; anything else fails. */
  answerBatch(frames: readonly MessageFrame[]): AbortedAnswer {
    const parse = frames.find((f) => f.type === FrontendMessage.Parse);
    const rollback = !this.mustNotify && parse !== undefined && ENDS_BLOCK.test(decodeParse(parse).sql);
    const out: Buffer[] = [];
    let ended = false;
    let failed = false;
    for (const frame of frames) {
      if (frame.type === FrontendMessage.Sync) {
        if (rollback && !failed) ended = true;
        out.push(buildReadyForQuery(ended ? TransactionStatus.Idle : TransactionStatus.Failed));
        failed = false;
        continue;
      }
      if (failed || frame.type === FrontendMessage.Flush) continue;
      if (!rollback) {
        out.push(this.error());
        failed = true;
        continue;
      }
      if (frame.type === FrontendMessage.Parse) out.push(PARSE_COMPLETE);
      else if (frame.type === FrontendMessage.Bind) out.push(BIND_COMPLETE);
      else if (frame.type === FrontendMessage.Describe) out.push(NO_DATA);
      else if (frame.type === FrontendMessage.Close) out.push(CLOSE_COMPLETE);
      else if (frame.type === FrontendMessage.Execute) out.push(buildCommandComplete('ROLLBACK'));
    }
    return { bytes: Buffer.concat(out), ended };
  }

  private error(): Buffer {
    if (this.mustNotify) {
      this.mustNotify = false;
      return abortedByFailoverError(
        'The primary changed while the transaction was open. Roll back, then retry the whole transaction.',
      );
    }
    return buildErrorResponse({
      severity: 'ERROR',
      code: SqlState.InFailedSqlTransaction,
      message:
        'current transaction is aborted (by failover), commands ignored until end of transaction block',
    });
  }
}
