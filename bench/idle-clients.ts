// Opens N client connections to a PostgreSQL endpoint and logs each in (trust), then keeps them
// idle until SIGTERM: the load for the proxy's idle-client memory figure.
//   tsx bench/idle-clients.ts <port> <count>
// Prints {"ready":N,"failed":M} once every connection finished its login (or failed).
import net from 'node:net';
import { FrameKind, MessageFramer } from '../src/wire/framer.ts';
import { BackendMessage } from '../src/wire/protocol.ts';
import { buildStartupMessage } from '../src/wire/startup.ts';

const port = Number(process.argv[2]);
const count = Number(process.argv[3]);
const IN_FLIGHT = 200;
const LOGIN_TIMEOUT_MS = 60_000;
const sockets: net.Socket[] = [];
let ready = 0;
let failed = 0;
let started = 0;

function login(): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const framer = new MessageFramer({ maxMessageBytes: 1 << 20 });
    let done = false;
    const finish = (ok: boolean) => {
      if (done) return;
      done = true;
      socket.setTimeout(0);
      if (ok) ready++;
      else {
        failed++;
        socket.destroy();
      }
      resolve();
    };
    socket.setTimeout(LOGIN_TIMEOUT_MS, () => finish(false));
    socket.on('error', () => finish(false));
    socket.on('close', () => finish(false));
    socket.on('connect', () => socket.write(buildStartupMessage({ user: 'postgres', database: 'postgres' })));
    socket.on('data', (chunk) => {
      framer.push(chunk);
      for (let f = framer.next(); f !== null; f = framer.next()) {
        if (f.kind !== FrameKind.Message) continue;
        if (f.type === BackendMessage.ReadyForQuery) finish(true);
        if (f.type === BackendMessage.ErrorResponse) finish(false);
      }
    });
    sockets.push(socket);
  });
}

async function worker(): Promise<void> {
  while (started < count) {
    started++;
    await login();
  }
}

await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
process.stdout.write(`${JSON.stringify({ ready, failed })}\n`);
process.once('SIGTERM', () => {
  for (const socket of sockets) socket.destroy();
  process.exit(0);
});
setInterval(() => {}, 1 << 30);
