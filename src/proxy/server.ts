// The proxy listener: accepts clients on the write port and the read-only port, owns
// the backend pool, the hold gate and the cancel-key map, and follows the topology
// (a newer term fences backend connections of older terms).
import { randomBytes, randomInt } from 'node:crypto';
import net, { type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type tls from 'node:tls';
import type { ClusterView, Endpoint, TopologySource } from '../cluster/view.ts';
import { deferred, type Service } from '../lifecycle.ts';
import { componentLogger, type Logger } from '../log.ts';
import { buildFatalError } from '../wire/backend.ts';
import { SqlState } from '../wire/sqlstate.ts';
import { loadAuthFile, scramSecretOf, type UserSecret } from './auth/auth-file.ts';
import type { ScramSecret } from './auth/scram.ts';
import { type BackendConnector, type BackendCredentials, tcpConnector } from './backend.ts';
import { ClientSession } from './client-session.ts';
import type { ProxyConfig } from './config.ts';
import { newCounters, type ProxyCounters, type ProxyStats } from './counters.ts';
import { HoldGate } from './hold.ts';
import { NoopHooks, type ProxyHooks } from './hooks.ts';
import { BackendPool } from './pool.ts';
import { chooseRoute, type PortKind, type Route } from './routing.ts';
import type { ClientAuthenticator, SessionConfig, SessionHost } from './session-host.ts';
import { loadTlsContext } from './tls.ts';

export interface ProxyServerOptions {
  config: ProxyConfig;
  topology: TopologySource;
  logger: Logger;
  /** The role and password the proxy logs in to PostgreSQL with; default: config.backendUser/backendPassword, else the client's user without a password. */
  backendCredentials?: BackendCredentials;
  /** Exactly-once hooks; default NoopHooks. */
  hooks?: ProxyHooks;
  /** How backend connections are opened; default TCP. Tests inject fakes. */
  connector?: BackendConnector;
}

export interface ProxyAddresses {
  write: AddressInfo;
  /** Null when the read-only port is disabled (readOnlyPort 0). */
  read: AddressInfo | null;
}

export class ProxyServer implements Service, SessionHost {
  readonly config: SessionConfig;
  readonly logger: Logger;
  readonly hooks: ProxyHooks;
  readonly pool: BackendPool;
  readonly connector: BackendConnector;
  readonly holds: HoldGate;
  readonly counters: ProxyCounters = newCounters();
  readonly tlsContext: tls.SecureContext | null;
  readonly authenticator: ClientAuthenticator;

  private readonly proxyConfig: ProxyConfig;
  private readonly topology: TopologySource;
  private readonly credentials: BackendCredentials;
  private readonly sessions = new Map<number, ClientSession>();
  private readonly listeners: { server: net.Server; port: PortKind }[] = [];
  private readonly finished = deferred<void>();
  private unsubscribe: (() => void) | null = null;
  private lastTerm: number;
  private nextProcessId = randomInt(1, 1 << 20);
  private routeTurn = 0;
  private stopping = false;
  private secrets = Buffer.alloc(0);
  private secretOffset = 0;

  constructor(options: ProxyServerOptions) {
    this.proxyConfig = options.config;
    this.topology = options.topology;
    this.logger = componentLogger(options.logger, 'proxy');
    this.hooks = options.hooks ?? new NoopHooks();
    this.connector = options.connector ?? tcpConnector;
    this.credentials = {
      user: options.backendCredentials?.user ?? options.config.backendUser,
      password: options.backendCredentials?.password ?? options.config.backendPassword,
    };
    const config = options.config;
    this.config = {
      poolMode: config.poolMode,
      loginTimeoutMs: config.loginTimeoutMs,
      holdTimeoutMs: config.holdTimeoutMs,
    };
    this.holds = new HoldGate({ maxHeldRequests: config.maxHeldRequests, maxHeldBytes: config.maxHeldBytes });
    this.pool = new BackendPool({
      connector: this.connector,
      logger: this.logger,
      poolSize: config.poolSize,
      idleTimeoutMs: config.serverIdleTimeoutMs,
      connectTimeoutMs: config.loginTimeoutMs,
      waitTimeoutMs: config.queryWaitTimeoutMs,
      password: this.credentials.password,
    });
    this.tlsContext = config.tls === undefined ? null : loadTlsContext(config.tls);
    this.authenticator = makeAuthenticator(config);
    this.lastTerm = this.topology.current().term;
  }

  get done(): Promise<void> {
    return this.finished.promise;
  }

  async start(): Promise<void> {
    this.unsubscribe = this.topology.subscribe((view) => this.onTopology(view));
    await this.listen(this.proxyConfig.port, 'write');
    if (this.proxyConfig.readOnlyPort !== 0) await this.listen(this.proxyConfig.readOnlyPort, 'read');
    const addresses = this.addresses();
    this.logger.info('proxy listening', {
      write: addresses.write.port,
      read: addresses.read?.port ?? null,
      poolMode: this.config.poolMode,
    });
  }

  async stop(): Promise<void> {
    if (this.stopping) return this.finished.promise;
    this.stopping = true;
    this.unsubscribe?.();
    const closing = this.listeners.map(
      ({ server }) => new Promise<void>((resolve) => server.close(() => resolve())),
    );
    for (const session of [...this.sessions.values()]) session.shutdown();
    this.pool.close();
    await Promise.all(closing);
    this.finished.resolve();
  }

  /** The bound addresses (port 0 in the config means OS-assigned). */
  addresses(): ProxyAddresses {
    const write = this.listeners.find((l) => l.port === 'write')?.server.address() as AddressInfo | undefined;
    const read = this.listeners.find((l) => l.port === 'read')?.server.address() as AddressInfo | undefined;
    if (write === undefined) throw new Error('the proxy is not listening: call start() first');
    return { write, read: read ?? null };
  }

  /** Write-port sessions with a request or transaction on a backend, or connecting to one: what a switchover drains. */
  writesInFlight(): number {
    let busy = 0;
    for (const session of this.sessions.values()) if (session.writeInFlight) busy += 1;
    return busy;
  }

  stats(): ProxyStats {
    const pool = this.pool.stats();
    return {
      ...this.counters,
      clients: this.sessions.size,
      backendsTotal: pool.total,
      backendsIdle: pool.idle,
      backendsWaiting: pool.waiting,
      heldRequests: this.holds.held,
      heldBytes: this.holds.heldBytes,
      heldTotal: this.holds.heldTotal,
      holdExpiredTotal: this.holds.expiredTotal,
      term: this.lastTerm,
    };
  }

  /** Serves one client connection (a socket, or any Duplex in process: tests and fuzzers). */
  accept(socket: Duplex, port: PortKind = 'write'): ClientSession | null {
    this.counters.clientsAccepted += 1;
    if (this.stopping || this.sessions.size >= this.proxyConfig.maxClientConn) {
      this.counters.clientsRefused += 1;
      socket.on('error', () => {});
      socket.end(
        buildFatalError(
          SqlState.TooManyConnections,
          this.stopping
            ? 'the proxy is shutting down'
            : `no more connections allowed (max_client_conn ${this.proxyConfig.maxClientConn})`,
        ),
      );
      return null;
    }
    return new ClientSession(socket, this, port);
  }

  // SessionHost ------------------------------------------------------------------

  registerSession(session: ClientSession): { processId: number; secretKey: number } {
    let processId = this.nextProcessId;
    while (this.sessions.has(processId)) processId = (processId % 0x7fffffff) + 1;
    this.nextProcessId = (processId % 0x7fffffff) + 1;
    this.sessions.set(processId, session);
    return { processId, secretKey: this.nextSecretKey() };
  }

  /** Cancel secrets from a pre-filled random buffer: one crypto call per 1024 logins, not per login. */
  private nextSecretKey(): number {
    if (this.secretOffset >= this.secrets.length) {
      this.secrets = randomBytes(4096);
      this.secretOffset = 0;
    }
    const secret = this.secrets.readInt32BE(this.secretOffset);
    this.secretOffset += 4;
    return secret;
  }

  unregisterSession(session: ClientSession): void {
    if (this.sessions.get(session.clientId) === session) this.sessions.delete(session.clientId);
  }

  cancel(processId: number, secretKey: number): void {
    const session = this.sessions.get(processId);
    // A wrong key is ignored silently, as PostgreSQL does: it must not reveal which keys exist.
    if (session === undefined || session.secretKey !== secretKey) return;
    session.cancelRequest();
  }

  route(port: PortKind): Route | null {
    this.routeTurn = (this.routeTurn + 1) | 0;
    return chooseRoute(this.topology.current(), port, this.proxyConfig.maxLagBytes, this.routeTurn);
  }

  currentTerm(): number {
    return this.topology.current().term;
  }

  mayContinue(term: number, endpoint: Endpoint): boolean {
    return this.topology.mayContinue?.(term, endpoint) ?? true;
  }

  backendUser(clientUser: string): string {
    return this.credentials.user ?? clientUser;
  }

  // ------------------------------------------------------------------------------

  private onTopology(view: ClusterView): void {
    if (view.term > this.lastTerm) {
      this.logger.info('new term: fencing backend connections of older terms', {
        term: view.term,
        previousTerm: this.lastTerm,
        primary: view.primary,
      });
      this.lastTerm = view.term;
      this.counters.termChanges += 1;
      this.pool.fence(view.term);
      for (const session of [...this.sessions.values()]) session.onTopology(view);
    }
    this.holds.notify();
  }

  private listen(port: number, kind: PortKind): Promise<void> {
    const server = net.createServer({ noDelay: true }, (socket) => {
      socket.setNoDelay(true);
      this.accept(socket, kind);
    });
    this.listeners.push({ server, port: kind });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, this.proxyConfig.host, () => {
        server.off('error', reject);
        server.on('error', (error) => this.logger.error('listener error', { error: error.message }));
        resolve();
      });
    });
  }
}

function makeAuthenticator(config: ProxyConfig): ClientAuthenticator {
  if (config.auth.method === 'trust') return { secretFor: () => 'trust' };
  if (config.auth.authFile === undefined) {
    throw new Error(
      'proxy.auth.method is scram-sha-256 but proxy.auth.authFile is not set: point it at a userlist',
    );
  }
  const users: Map<string, UserSecret> = loadAuthFile(config.auth.authFile);
  const salt = randomBytes(16);
  const derived = new Map<string, ScramSecret>();
  return {
    secretFor(user: string): ScramSecret | null {
      const entry = users.get(user);
      if (entry === undefined) return null;
      let secret = derived.get(user);
      if (secret === undefined) {
        secret = scramSecretOf(entry, salt);
        derived.set(user, secret);
      }
      return secret;
    },
  };
}
