import type { MessageView } from '../../src/wire/framer.ts';

/** The body view of one whole typed message. */
export function typedView(message: Buffer): MessageView {
  return { buffer: message, bodyStart: 5, end: message.length };
}

/** The body view of one whole startup-phase packet. */
export function untypedView(packet: Buffer): MessageView {
  return { buffer: packet, bodyStart: 4, end: packet.length };
}
