// Keeps this node's PostgreSQL running. First start: the bootstrap primary runs
// initdb, a backup waits for the primary and clones it (pg_basebackup + slot).
// Later starts reuse the data dir. A postmaster that dies is restarted with backoff
// unless auto-restart is off (the failover layer turns it off while it decides).
import { EventEmitter } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.ts';
import { deferred, type Service } from '../lifecycle.ts';
import type { Logger } from '../log.ts';
import {
  type FollowTarget,
  type PostgresInstance,
  type PostmasterExit,
  queryOnce,
} from '../postgres/instance.ts';

export interface SupervisorOptions {
  instance: PostgresInstance;
  logger: Logger;
  /** Directory for pgward-state.json (the sidecar's node.dataDir). */
  stateDir: string;
  /** True when this node runs initdb on first start (bootstrap.primary). */
  bootstrapPrimary: boolean;
  /**
   * Whom to follow, asked before every (re)start and clone: null to run as a primary.
   * The foundation answers from config (bootstrap.primary); failover replaces this.
   */
  followTarget: () => FollowTarget | null;
  /** Replication slots a primary keeps for the other members. */
  slotsToKeep: () => string[];
  startTimeoutMs: number;
  stopTimeoutMs: number;
  restartDelayMs: number;
  /** Bound on waiting for the primary on a backup's first start. */
  bootstrapTimeoutMs?: number;
  /** Sends a signal to the postmaster (tests replace it); default process.kill. */
  signal?: (pid: number, signal: NodeJS.Signals) => void;
}

export interface SupervisorEvents {
  /** PostgreSQL is up (first start and every restart). */
  started: [{ pid: number; role: 'primary' | 'backup' }];
  /** The postmaster died without us stopping it. */
  crashed: [PostmasterExit];
}

interface NodeState {
  systemIdentifier?: string;
}

const STATE_FILE = 'pgward-state.json';
const MAX_RESTART_DELAY_MS = 5000;
const PRIMARY_POLL_MS = 500;
/** How often a starting backup checks whether the primary it should follow moved. */
const REPOINT_CHECK_MS = 500;

function sameTarget(a: FollowTarget, b: FollowTarget): boolean {
  return a.host === b.host && a.port === b.port && a.slotName === b.slotName;
}

export class PostgresSupervisor extends EventEmitter<SupervisorEvents> implements Service {
  private readonly options: SupervisorOptions;
  private readonly ended = deferred<void>();
  private stopping = false;
  private autoRestart = true;
  private restartTimer: NodeJS.Timeout | null = null;
  private restartDelayMs: number;
  private restarting: Promise<void> | null = null;

  constructor(options: SupervisorOptions) {
    super();
    this.options = options;
    this.restartDelayMs = options.restartDelayMs;
    options.instance.on('exit', (exit) => this.onExit(exit));
  }

  get done(): Promise<void> {
    return this.ended.promise;
  }

  get instance(): PostgresInstance {
    return this.options.instance;
  }

  /** Turns restart-on-death on or off (failover turns it off while it rewinds or promotes). */
  setAutoRestart(enabled: boolean): void {
    this.autoRestart = enabled;
  }

  async start(): Promise<void> {
    const { instance, logger } = this.options;
    instance.checkOwnership();
    if (!instance.hasData()) {
      // initdb only for a cluster that never existed: a node that already belonged to one
      // (its state names a system identifier) must clone the current primary instead.
      const known = this.readState().systemIdentifier;
      if (this.options.bootstrapPrimary && known === undefined) {
        logger.info('bootstrapping: initdb');
        await instance.initdb();
        instance.writeConfig(null);
        await instance.start(this.options.startTimeoutMs);
        await instance.ensureReplicationRole();
      } else {
        const target = this.options.followTarget();
        if (target === null) {
          throw new UserError(
            `postgres.dataDir ${instance.dataDir} is missing, but this node belonged to cluster ${known} and has no primary to clone`,
            `start the other members first so this node can clone the primary, or remove ${this.stateFile()} to bootstrap a new cluster`,
          );
        }
        await this.waitForPrimary(target);
        logger.info('bootstrapping: cloning the primary', { primary: `${target.host}:${target.port}` });
        await instance.cloneFrom(target);
      }
    }
    await this.checkIdentity();
    await this.startOnce();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer !== null) clearTimeout(this.restartTimer);
    await this.restarting?.catch(() => {});
    await this.options.instance.stop('fast', this.options.stopTimeoutMs);
    this.ended.resolve();
  }

  /** (Re)writes the config for the current follow target and starts PostgreSQL if it is not running. */
  async startOnce(): Promise<number> {
    const { instance, logger } = this.options;
    const target = this.options.followTarget();
    if (!instance.isRunning()) instance.writeConfig(target);
    const following = target === null ? null : this.repointWhileStarting(target);
    let pid: number;
    try {
      pid = await instance.start(this.options.startTimeoutMs);
    } finally {
      following?.stop();
    }
    const role = target === null ? 'primary' : 'backup';
    if (role === 'primary') {
      for (const slot of this.options.slotsToKeep()) await instance.ensureSlot(slot);
    }
    this.restartDelayMs = this.options.restartDelayMs;
    logger.info('postgres running', { pid, role });
    this.emit('started', { pid, role });
    return pid;
  }

  /**
   * A backup that starts accepts no connection until it replays WAL from its target
   * up to a consistent point. When the primary moves meanwhile (a second failover
   * while a rewound old primary starts), the old target may never serve it again (it
   * is being demoted, its slots are gone) and the start would wait out its whole
   * bound. Re-pointing needs no SQL: the config file is rewritten and the postmaster
   * reloaded (SIGHUP), and PostgreSQL restarts its walreceiver on the new
   * primary_conninfo.
   */
  private repointWhileStarting(initial: FollowTarget): { stop(): void } {
    const { instance, logger } = this.options;
    let current = initial;
    const timer = setInterval(() => {
      const next = this.options.followTarget();
      const pid = instance.postmasterPid();
      if (next === null || sameTarget(next, current) || pid === null || !instance.isStandby()) return;
      try {
        instance.writeConfig(next);
        (this.options.signal ?? ((p, s) => process.kill(p, s)))(pid, 'SIGHUP');
      } catch (error) {
        // The start still ends by its own bound; the failover layer then decides again.
        logger.warn('could not re-point the starting backup', { error: (error as Error).message });
        return;
      }
      logger.info('the primary moved while postgres was starting: following the new one', {
        from: `${current.host}:${current.port}`,
        to: `${next.host}:${next.port}`,
      });
      current = next;
    }, REPOINT_CHECK_MS);
    return { stop: () => clearInterval(timer) };
  }

  private onExit(exit: PostmasterExit): void {
    if (this.stopping) return;
    this.options.logger.warn('postmaster exited', { ...exit });
    this.emit('crashed', exit);
    if (this.autoRestart) this.scheduleRestart();
  }

  private scheduleRestart(): void {
    if (this.stopping || this.restartTimer !== null || this.restarting !== null) return;
    const delayMs = this.restartDelayMs;
    this.restartDelayMs = Math.min(MAX_RESTART_DELAY_MS, Math.max(100, delayMs * 2));
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (this.stopping || !this.autoRestart) return;
      this.restarting = this.startOnce()
        .then(() => undefined)
        .catch((error: Error) => {
          this.options.logger.error('restarting postgres failed; retrying', {
            error: error.message,
            delayMs,
          });
          this.restarting = null;
          this.scheduleRestart();
        })
        .finally(() => {
          this.restarting = null;
        });
    }, delayMs);
  }

  private async waitForPrimary(target: FollowTarget): Promise<void> {
    const { instance, logger } = this.options;
    const timeoutMs = this.options.bootstrapTimeoutMs ?? 10 * 60 * 1000;
    const deadline = Date.now() + timeoutMs;
    const role = instance.options.replicationUser;
    let lastError = 'no answer yet';
    let logged = false;
    while (Date.now() < deadline && !this.stopping) {
      try {
        const rows = await queryOnce(
          { ...instance.clientConfig(), host: target.host, port: target.port },
          'SELECT NOT pg_is_in_recovery() AS primary, EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AS ready',
          [role],
        );
        if (rows[0]?.primary === true && rows[0]?.ready === true) return;
        lastError = 'the primary is not ready yet';
      } catch (error) {
        lastError = (error as Error).message;
      }
      if (!logged) {
        logger.info('waiting for the primary to clone it', { primary: `${target.host}:${target.port}` });
        logged = true;
      }
      await new Promise((resolve) => setTimeout(resolve, PRIMARY_POLL_MS));
    }
    throw new Error(
      `the primary at ${target.host}:${target.port} was not ready within ${timeoutMs} ms: ${lastError}`,
    );
  }

  /** Refuses a data dir whose system identifier differs from the one this node recorded. */
  private stateFile(): string {
    return path.join(this.options.stateDir, STATE_FILE);
  }

  private readState(): NodeState {
    const file = this.stateFile();
    return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as NodeState) : {};
  }

  private async checkIdentity(): Promise<void> {
    const file = this.stateFile();
    const state = this.readState();
    const actual = await this.options.instance.systemIdentifier();
    if (state.systemIdentifier !== undefined && state.systemIdentifier !== actual) {
      throw new UserError(
        `postgres.dataDir ${this.options.instance.dataDir} holds cluster ${actual}, but this node belongs to cluster ${state.systemIdentifier}`,
        `restore this node's own data dir, or remove ${file} and the data dir to re-clone it`,
      );
    }
    if (state.systemIdentifier === undefined) {
      writeFileSync(file, `${JSON.stringify({ ...state, systemIdentifier: actual })}\n`);
    }
  }
}
