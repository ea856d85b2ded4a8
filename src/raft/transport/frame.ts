// Raft frames on the wire. No `net` here: encoding, incremental decoding and
// authentication only.
//
//   [u32 bodyLen] body = [u8 version][u8 n][clusterId][u8 n][from][u8 n][to][payload][32-byte HMAC]
//
// The HMAC-SHA256 (keyed by the shared cluster secret) covers the whole body but
// the MAC itself. Raft tolerates duplicated and stale messages, so replays of
// authentic frames need no extra defence here.
import { createHmac, timingSafeEqual } from 'node:crypto';

export const FRAME_VERSION = 1;
const LENGTH_BYTES = 4;
const MAC_BYTES = 32;
const MAX_NAME_BYTES = 255;

export interface FrameHeader {
  clusterId: string;
  from: string;
  to: string;
}

export interface Frame extends FrameHeader {
  payload: Uint8Array;
}

export type FrameRejection =
  | 'oversize'
  | 'malformed'
  | 'version'
  | 'wrong-cluster'
  | 'wrong-recipient'
  | 'unknown-peer'
  | 'bad-mac';

/** Who this reader accepts frames from: one cluster, one recipient, known senders. */
export interface FrameAcceptance {
  clusterId: string;
  self: string;
  isKnownPeer(name: string): boolean;
}

function mac(secret: string, body: Uint8Array): Buffer {
  return createHmac('sha256', secret).update(body).digest();
}

function nameBytes(name: string, what: string): Buffer {
  const bytes = Buffer.from(name, 'utf8');
  if (bytes.length === 0 || bytes.length > MAX_NAME_BYTES) {
    throw new Error(`raft frame ${what} must be 1..${MAX_NAME_BYTES} bytes, got ${bytes.length}`);
  }
  return bytes;
}

export function encodeFrame(frame: Frame, secret: string): Buffer {
  const parts = [
    Buffer.of(FRAME_VERSION),
    ...[
      [frame.clusterId, 'cluster id'],
      [frame.from, 'sender'],
      [frame.to, 'recipient'],
    ].flatMap(([name, what]) => {
      const bytes = nameBytes(name!, what!);
      return [Buffer.of(bytes.length), bytes];
    }),
    frame.payload,
  ];
  const body = Buffer.concat(parts);
  const out = Buffer.allocUnsafe(LENGTH_BYTES + body.length + MAC_BYTES);
  out.writeUInt32BE(body.length + MAC_BYTES, 0);
  out.set(body, LENGTH_BYTES);
  out.set(mac(secret, body), LENGTH_BYTES + body.length);
  return out;
}

export type ReadResult = { frames: Frame[]; rejection: FrameRejection | null };

/**
 * Splits a byte stream into authenticated frames. Stops at the first bad frame:
 * after that the stream cannot be trusted and the caller closes the connection.
 */
export class FrameReader {
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private rejected: FrameRejection | null = null;

  constructor(
    private readonly secret: string,
    private readonly maxFrameBytes: number,
    private readonly acceptance: FrameAcceptance,
  ) {}

  push(chunk: Buffer): ReadResult {
    if (this.rejected !== null) return { frames: [], rejection: this.rejected };
    this.buffered.push(chunk);
    this.bufferedBytes += chunk.length;
    const frames: Frame[] = [];
    while (this.bufferedBytes >= LENGTH_BYTES) {
      const head = this.peek(LENGTH_BYTES);
      const frameLen = head.readUInt32BE(0);
      // Reject before buffering: a peer must not make us hold an oversized frame.
      if (frameLen > this.maxFrameBytes) return this.reject('oversize', frames);
      if (this.bufferedBytes < LENGTH_BYTES + frameLen) break;
      const whole = this.take(LENGTH_BYTES + frameLen).subarray(LENGTH_BYTES);
      const parsed = this.parse(whole);
      if (typeof parsed === 'string') return this.reject(parsed, frames);
      frames.push(parsed);
    }
    return { frames, rejection: null };
  }

  // Header checks come before the MAC so that a frame from another cluster (likely
  // with another secret) is reported as such, not as a forgery.
  private parse(framed: Buffer): Frame | FrameRejection {
    if (framed.length < MAC_BYTES + 1) return 'malformed';
    const body = framed.subarray(0, framed.length - MAC_BYTES);
    if (body[0] !== FRAME_VERSION) return 'version';
    let offset = 1;
    const names: string[] = [];
    for (let i = 0; i < 3; i++) {
      const len = body[offset];
      if (len === undefined || len === 0 || offset + 1 + len > body.length) return 'malformed';
      names.push(body.toString('utf8', offset + 1, offset + 1 + len));
      offset += 1 + len;
    }
    const [clusterId, from, to] = names as [string, string, string];
    if (clusterId !== this.acceptance.clusterId) return 'wrong-cluster';
    if (to !== this.acceptance.self) return 'wrong-recipient';
    if (!this.acceptance.isKnownPeer(from)) return 'unknown-peer';
    const expected = mac(this.secret, body);
    if (!timingSafeEqual(expected, framed.subarray(framed.length - MAC_BYTES))) return 'bad-mac';
    return { clusterId, from, to, payload: body.subarray(offset) };
  }

  private reject(rejection: FrameRejection, frames: Frame[]): ReadResult {
    this.rejected = rejection;
    this.buffered = [];
    this.bufferedBytes = 0;
    return { frames, rejection };
  }

  private peek(n: number): Buffer {
    if (this.buffered[0]!.length < n) this.buffered = [Buffer.concat(this.buffered)];
    return this.buffered[0]!.subarray(0, n);
  }

  private take(n: number): Buffer {
    const all = this.buffered.length === 1 ? this.buffered[0]! : Buffer.concat(this.buffered);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.buffered = rest.length > 0 ? [rest] : [];
    this.bufferedBytes = rest.length;
    return out;
  }
}
