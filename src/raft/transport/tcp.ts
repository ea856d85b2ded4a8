// Raft over TCP. Each node dials one outbound connection per peer and sends on
// it; connections it accepts are receive-only. Sending never blocks the Raft
// loop: frames wait in a bounded per-peer queue that drops the oldest (Raft
// retransmits, and a fresh heartbeat beats a stale one).
import net from 'node:net';
import { deferred, type Service } from '../../lifecycle.ts';
import type { Logger } from '../../log.ts';
import { encodeFrame, FrameReader, type FrameRejection } from './frame.ts';

export interface PeerAddress {
  host: string;
  port: number;
}

export interface TcpTransportOptions {
  self: string;
  clusterId: string;
  /** Shared cluster secret keying the frame HMAC. */
  secret: string;
  listen: PeerAddress;
  peers: ReadonlyMap<string, PeerAddress>;
  logger: Logger;
  /** Uniform in [0, 1): jitters reconnect delays (injected so tests can pin it). */
  random: () => number;
  onMessage(from: string, payload: Uint8Array): void;
  maxFrameBytes?: number;
  maxQueuedFrames?: number;
  maxInboundConnections?: number;
  reconnectInitialMs?: number;
  reconnectMaxMs?: number;
  connectTimeoutMs?: number;
  /** A connection whose writes stay blocked this long is presumed dead and redialled. */
  writeStallMs?: number;
  /** An inbound connection must deliver an authentic frame within this long or be closed. */
  firstFrameTimeoutMs?: number;
}

export interface TransportCounters {
  framesSent: number;
  framesReceived: number;
  /** Frames dropped from a full per-peer queue (oldest first). */
  framesDroppedQueueFull: number;
  connectFailures: number;
  inboundRefused: number;
  rejected: Record<FrameRejection, number>;
}

const DEFAULTS = {
  maxFrameBytes: 8 * 1024 * 1024,
  maxQueuedFrames: 1024,
  maxInboundConnections: 64,
  reconnectInitialMs: 50,
  reconnectMaxMs: 1000,
  connectTimeoutMs: 1000,
  writeStallMs: 2000,
  firstFrameTimeoutMs: 10_000,
};

export class TcpTransport implements Service {
  private readonly options: Required<TcpTransportOptions>;
  private readonly server: net.Server;
  private readonly links = new Map<string, PeerLink>();
  private readonly inbound = new Set<net.Socket>();
  private readonly inboundByPeer = new Map<string, net.Socket>();
  private readonly finished = deferred<void>();
  private stopped = false;
  readonly counters: TransportCounters = {
    framesSent: 0,
    framesReceived: 0,
    framesDroppedQueueFull: 0,
    connectFailures: 0,
    inboundRefused: 0,
    rejected: {
      oversize: 0,
      malformed: 0,
      version: 0,
      'wrong-cluster': 0,
      'wrong-recipient': 0,
      'unknown-peer': 0,
      'bad-mac': 0,
    },
  };
  readonly done: Promise<void> = this.finished.promise;

  constructor(options: TcpTransportOptions) {
    this.options = { ...DEFAULTS, ...options } as Required<TcpTransportOptions>;
    if (options.peers.has(options.self)) throw new Error('raft transport peers must not include self');
    for (const [name, address] of options.peers) this.links.set(name, new PeerLink(this, name, address));
    this.server = net.createServer((socket) => this.accept(socket));
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.listen.port, this.options.listen.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.server.on('error', (error) => this.options.logger.error('raft transport listener error', { error }));
    for (const link of this.links.values()) link.connect();
  }

  async stop(): Promise<void> {
    if (this.stopped) return this.done;
    this.stopped = true;
    for (const link of this.links.values()) link.close();
    for (const socket of this.inbound) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.finished.resolve();
  }

  /** The bound address (the real port when listening on port 0). */
  address(): PeerAddress {
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('raft transport is not listening');
    return { host: address.address, port: address.port };
  }

  /** Adds a peer (a new member) or points a known one at a new address. */
  setPeerAddress(name: string, address: PeerAddress): void {
    if (name === this.options.self) throw new Error('raft transport peers must not include self');
    const link = this.links.get(name);
    if (link !== undefined) {
      link.redirect(address);
      return;
    }
    const added = new PeerLink(this, name, address);
    this.links.set(name, added);
    if (this.server.listening) added.connect();
  }

  /** Forgets a removed member: its queue, its connection, and its right to send to us. */
  removePeer(name: string): void {
    this.links.get(name)?.close();
    this.links.delete(name);
  }

  hasPeer(name: string): boolean {
    return this.links.has(name);
  }

  /** Queues a payload for `to`; never blocks, never throws on network trouble. */
  send(to: string, payload: Uint8Array): void {
    if (this.stopped) return;
    const frame = encodeFrame(
      { clusterId: this.options.clusterId, from: this.options.self, to, payload },
      this.options.secret,
    );
    if (frame.length - 4 > this.options.maxFrameBytes) {
      throw new Error(
        `raft frame of ${frame.length} bytes to ${to} exceeds maxFrameBytes ${this.options.maxFrameBytes}`,
      );
    }
    this.link(to).enqueue(frame);
  }

  /** @internal for PeerLink */
  get settings(): Required<TcpTransportOptions> {
    return this.options;
  }

  /** @internal for PeerLink */
  get isStopped(): boolean {
    return this.stopped;
  }

  private link(name: string): PeerLink {
    const link = this.links.get(name);
    if (link === undefined) throw new Error(`raft transport: unknown peer ${name}`);
    return link;
  }

  private accept(socket: net.Socket): void {
    const { logger } = this.options;
    if (this.stopped || this.inbound.size >= this.options.maxInboundConnections) {
      this.counters.inboundRefused++;
      logger.warn('raft transport refused an inbound connection', {
        remote: socket.remoteAddress,
        inbound: this.inbound.size,
      });
      socket.destroy();
      return;
    }
    this.inbound.add(socket);
    socket.setNoDelay(true);
    // A connection that never authenticates must not hold one of the bounded slots.
    socket.setTimeout(this.options.firstFrameTimeoutMs, () => socket.destroy());
    let peer: string | null = null;
    const reader = new FrameReader(this.options.secret, this.options.maxFrameBytes, {
      clusterId: this.options.clusterId,
      self: this.options.self,
      isKnownPeer: (name) => this.links.has(name),
    });
    socket.on('data', (chunk: Buffer) => {
      const { frames, rejection } = reader.push(chunk);
      for (const frame of frames) {
        if (peer === null) {
          peer = frame.from;
          socket.setTimeout(0);
          // A peer dials one connection to us; an older one from it is dead
          // (e.g. half-open after a partition) and only wastes a slot.
          this.inboundByPeer.get(peer)?.destroy();
          this.inboundByPeer.set(peer, socket);
        }
        this.counters.framesReceived++;
        this.options.onMessage(frame.from, frame.payload);
      }
      if (rejection !== null) {
        this.counters.rejected[rejection]++;
        logger.warn('raft transport dropped a frame and closed the connection', {
          rejection,
          remote: `${socket.remoteAddress}:${socket.remotePort}`,
        });
        socket.destroy();
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.inbound.delete(socket);
      if (peer !== null && this.inboundByPeer.get(peer) === socket) this.inboundByPeer.delete(peer);
    });
  }
}

class PeerLink {
  private queue: Buffer[] = [];
  private socket: net.Socket | null = null;
  private connected = false;
  private blocked = false;
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private stallTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly transport: TcpTransport,
    private readonly name: string,
    private address: PeerAddress,
  ) {}

  enqueue(frame: Buffer): void {
    this.queue.push(frame);
    if (this.queue.length > this.transport.settings.maxQueuedFrames) {
      this.queue.shift();
      this.transport.counters.framesDroppedQueueFull++;
    }
    this.flush();
  }

  redirect(address: PeerAddress): void {
    this.address = address;
    this.socket?.destroy();
  }

  connect(): void {
    if (this.closed || this.socket !== null) return;
    const { connectTimeoutMs } = this.transport.settings;
    const socket = net.connect({ host: this.address.host, port: this.address.port });
    this.socket = socket;
    socket.setNoDelay(true);
    socket.setTimeout(connectTimeoutMs, () => socket.destroy(new Error('connect timeout')));
    socket.on('connect', () => {
      socket.setTimeout(0);
      this.connected = true;
      this.attempt = 0;
      this.transport.settings.logger.debug('raft transport connected', { peer: this.name });
      this.flush();
    });
    socket.on('drain', () => {
      this.blocked = false;
      this.clearStallTimer();
      this.flush();
    });
    // The peer never talks back on our outbound connection.
    socket.on('data', () => socket.destroy(new Error('unexpected data on an outbound raft connection')));
    socket.on('error', (error) => {
      if (!this.connected) this.transport.counters.connectFailures++;
      this.transport.settings.logger.debug('raft transport connection error', {
        peer: this.name,
        error: error.message,
      });
    });
    socket.on('close', () => {
      this.socket = null;
      this.connected = false;
      this.blocked = false;
      this.clearStallTimer();
      this.scheduleReconnect();
    });
  }

  close(): void {
    this.closed = true;
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.clearStallTimer();
    this.socket?.destroy();
    this.queue = [];
  }

  private flush(): void {
    if (this.socket === null || !this.connected || this.blocked) return;
    while (this.queue.length > 0) {
      const frame = this.queue.shift()!;
      this.transport.counters.framesSent++;
      if (!this.socket.write(frame)) {
        this.blocked = true;
        const socket = this.socket;
        this.stallTimer = setTimeout(
          () => socket.destroy(new Error('writes stalled')),
          this.transport.settings.writeStallMs,
        );
        return;
      }
    }
  }

  private scheduleReconnect(): void {
    if (this.closed || this.transport.isStopped || this.reconnectTimer !== null) return;
    const { reconnectInitialMs, reconnectMaxMs, random } = this.transport.settings;
    const capMs = Math.min(reconnectMaxMs, reconnectInitialMs * 2 ** Math.min(this.attempt, 20));
    this.attempt++;
    // Half fixed, half random: spreads reconnect storms without ever retrying at once.
    const delayMs = capMs / 2 + random() * (capMs / 2);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.connect();
    }, delayMs);
  }

  private clearStallTimer(): void {
    if (this.stallTimer !== null) clearTimeout(this.stallTimer);
    this.stallTimer = null;
  }
}
