// Drives a MessageFramer over a list of chunks and collects each message's exact bytes,
// reassembling streamed messages, so tests compare what came out with what went in.
import { FrameKind, type FramerOptions, MessageFramer } from '../../src/wire/framer.ts';

export interface Collected {
  messages: Buffer[];
  /** How many messages came out streamed rather than whole. */
  streamed: number;
}

export function frameAll(chunks: Buffer[], options: FramerOptions, startupPackets = 0): Collected {
  const framer = new MessageFramer({ ...options, startup: startupPackets > 0 });
  let startupLeft = startupPackets;
  const messages: Buffer[] = [];
  let pieces: Buffer[] | null = null;
  let streamed = 0;
  for (const chunk of chunks) {
    framer.push(chunk);
    for (let frame = framer.next(); frame !== null; frame = framer.next()) {
      if (frame.kind === FrameKind.Message) {
        messages.push(Buffer.from(frame.buffer.subarray(frame.start, frame.end)));
        if (frame.type === 0 && --startupLeft > 0) framer.expectStartupPacket();
      } else if (frame.kind === FrameKind.StreamStart) {
        pieces = [Buffer.from(frame.bytes)];
      } else {
        pieces!.push(Buffer.from(frame.bytes));
        if (frame.last) {
          const whole = Buffer.concat(pieces!);
          messages.push(whole);
          streamed++;
          pieces = null;
        }
      }
    }
  }
  return { messages, streamed };
}
