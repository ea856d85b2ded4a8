// What a client session needs from the server it belongs to (ProxyServer implements it;
// test harnesses may provide their own).
import type tls from 'node:tls';
import type { Endpoint } from '../cluster/view.ts';
import type { Logger } from '../log.ts';
import type { ScramSecret } from './auth/scram.ts';
import type { BackendConnector } from './backend.ts';
import type { ClientSession } from './client-session.ts';
import type { ProxyCounters } from './counters.ts';
import type { HoldGate } from './hold.ts';
import type { ProxyHooks } from './hooks.ts';
import type { BackendPool } from './pool.ts';
import type { PortKind, Route } from './routing.ts';

export interface SessionConfig {
  poolMode: 'session' | 'transaction';
  loginTimeoutMs: number;
  holdTimeoutMs: number;
}

/** How a client proves who it is: `trust`, or a SCRAM secret (null: unknown user, fails at the proof). */
export interface ClientAuthenticator {
  secretFor(user: string): ScramSecret | null | 'trust';
}

export interface SessionHost {
  readonly config: SessionConfig;
  readonly logger: Logger;
  readonly hooks: ProxyHooks;
  readonly pool: BackendPool;
  readonly connector: BackendConnector;
  readonly holds: HoldGate;
  readonly counters: ProxyCounters;
  readonly tlsContext: tls.SecureContext | null;
  readonly authenticator: ClientAuthenticator;
  /** Issues the session's own BackendKeyData. */
  registerSession(session: ClientSession): { processId: number; secretKey: number };
  unregisterSession(session: ClientSession): void;
  /** A CancelRequest arrived with this key. */
  cancel(processId: number, secretKey: number): void;
  /** Where a request from `port` goes now; null while there is nowhere to go. */
  route(port: PortKind): Route | null;
  currentTerm(): number;
  /**
   * Whether a transaction open on a backend of `term` at `endpoint` may go on (see
   * TopologySource.mayContinue): false once this proxy cannot vouch for that term.
   */
  mayContinue(term: number, endpoint: Endpoint): boolean;
  /** The role the proxy logs in to PostgreSQL as for a client logged in as `clientUser`. */
  backendUser(clientUser: string): string;
}
