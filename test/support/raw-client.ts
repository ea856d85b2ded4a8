// A raw protocol client for proxy tests: send exact bytes, read back whole backend messages.
import net from 'node:net';
import { decodeErrorResponse, type ErrorFields } from '../../src/wire/backend.ts';
import { FrameKind, frameBytes, MessageFramer } from '../../src/wire/framer.ts';
import { buildStartupMessage } from '../../src/wire/startup.ts';

export interface RawMessage {
  type: string;
  bytes: Buffer;
}

export class RawClient {
  readonly messages: RawMessage[] = [];
  closed = false;
  private unframed = false;
  private readonly framer = new MessageFramer({ maxMessageBytes: 1 << 30 });
  private rawBytes = Buffer.alloc(0);
  private readonly waiters = new Set<() => void>();

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.rawBytes = Buffer.concat([this.rawBytes, chunk]);
      if (!this.unframed) this.frame(chunk);
      this.wake();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  private frame(chunk: Buffer): void {
    this.framer.push(chunk);
    try {
      for (let frame = this.framer.next(); frame !== null; frame = this.framer.next()) {
        if (frame.kind === FrameKind.Message) {
          this.messages.push({
            type: String.fromCharCode(frame.type),
            bytes: Buffer.from(frameBytes(frame)),
          });
        }
      }
    } catch {
      // Single-byte answers (to SSLRequest/GSSENCRequest) are not messages: keep the raw bytes only.
      this.unframed = true;
    }
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  /** Every byte received so far (for single-byte answers such as SSLRequest's 'N'). */
  get received(): Buffer {
    return this.rawBytes;
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** StartupMessage, then waits for ReadyForQuery (or an error). */
  async startup(user: string, database: string): Promise<void> {
    this.write(buildStartupMessage({ user, database }));
    await this.until(() => this.messages.some((m) => m.type === 'Z' || m.type === 'E'), 20_000);
  }

  /** Resolves once `condition` holds; rejects after `timeoutMs`. */
  until(condition: () => boolean, timeoutMs: number): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!condition()) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(
          new Error(
            `raw client: condition not met within ${timeoutMs} ms; got ${this.messages.map((m) => m.type).join('')}`,
          ),
        );
      }, timeoutMs);
      this.waiters.add(check);
    });
  }

  /** Waits for the connection to close; returns the last ErrorResponse's fields, if any. */
  async closedWithError(timeoutMs = 20_000): Promise<ErrorFields | null> {
    await this.until(() => this.closed, timeoutMs);
    return this.lastError();
  }

  lastError(): ErrorFields | null {
    const error = this.messages.findLast((m) => m.type === 'E');
    if (error === undefined) return null;
    return decodeErrorResponse({ buffer: error.bytes, bodyStart: 5, end: error.bytes.length });
  }

  close(): void {
    this.socket.destroy();
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}
