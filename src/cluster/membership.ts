// Run-time membership changes: `pgward member add|remove`, POST /members and
// DELETE /members/NAME. Each is a single-server Raft configuration change (one at
// a time, so old and new majorities overlap) plus a cluster command carrying the
// member's addresses, both in the replicated log, so every sidecar (and a
// restarted one, by replaying the log or its snapshot) agrees on the membership:
//   add:    member-add{spec} (addresses known everywhere), then addVoter/addWitness
//   remove: remove (it stops counting for quorum), then member-remove (out of the
//           synchronous quorum, slot kept no longer, out of routing)
// The plans are pure; MembershipRunner does the IO on the leader.
import type { AdminResult } from '../api/routes/types.ts';
import type { Logger } from '../log.ts';
import type { ConfChange, ConfState } from '../raft/core/types.ts';
import { ProposalRejectedError } from '../raft/driver.ts';
import type { ClusterCommand, MemberSpec } from './commands.ts';

type Refusal = Extract<AdminResult, { ok: false }>;

export interface MembershipPlan {
  /** Cluster command to commit before the conf change (add) or after it (remove). */
  command: ClusterCommand | null;
  /** The Raft change, or null when the Raft configuration already has it. */
  change: ConfChange | null;
}

function inConf(conf: ConfState, name: string): 'voter' | 'witness' | 'learner' | null {
  if (conf.voters.includes(name)) return 'voter';
  if (conf.witnesses.includes(name)) return 'witness';
  if (conf.learners.includes(name)) return 'learner';
  return null;
}

function sameAddresses(a: MemberSpec, b: MemberSpec): boolean {
  return (
    a.kind === b.kind &&
    a.host === b.host &&
    a.raftPort === b.raftPort &&
    a.apiPort === b.apiPort &&
    a.pgPort === b.pgPort &&
    (b.proxyPort === null || a.proxyPort === b.proxyPort)
  );
}

/** What adding `spec` takes, or why it is refused. Re-running a half-done add finishes it. */
export function planMemberAdd(input: {
  members: readonly MemberSpec[];
  conf: ConfState;
  spec: MemberSpec;
}): MembershipPlan | Refusal {
  const { spec } = input;
  if (spec.kind === 'member' && spec.pgPort === null) {
    return {
      ok: false,
      status: 400,
      message: `a database member needs pgPort (or add ${spec.name} as a witness)`,
    };
  }
  if (spec.kind === 'witness' && spec.pgPort !== null) {
    return { ok: false, status: 400, message: 'a witness has no PostgreSQL: leave pgPort out' };
  }
  const existing = input.members.find((m) => m.name === spec.name);
  if (existing !== undefined && !sameAddresses(existing, spec)) {
    return {
      ok: false,
      status: 409,
      message: `${spec.name} is already a ${existing.kind} with other addresses or kind: remove it first`,
    };
  }
  const want = spec.kind === 'witness' ? 'witness' : 'voter';
  const has = inConf(input.conf, spec.name);
  if (existing !== undefined && has === want) {
    return { ok: false, status: 409, message: `${spec.name} is already a ${spec.kind} of the cluster` };
  }
  return {
    command: existing === undefined ? { type: 'member-add', member: { ...spec } } : null,
    change:
      has === want ? null : { type: spec.kind === 'witness' ? 'addWitness' : 'addVoter', node: spec.name },
  };
}

/** What removing `name` takes, or why it is refused (the primary, the last database member). */
export function planMemberRemove(input: {
  members: readonly MemberSpec[];
  conf: ConfState;
  primary: string | null;
  self: string;
  name: string;
}): MembershipPlan | Refusal {
  const { name } = input;
  const existing = input.members.find((m) => m.name === name);
  const has = inConf(input.conf, name);
  if (existing === undefined && has === null) {
    return { ok: false, status: 404, message: `no member named ${name}` };
  }
  if (name === input.primary || name === input.self) {
    return {
      ok: false,
      status: 409,
      message: `${name} is the primary: switch over first (pgward switchover --to <another member>), then remove it`,
    };
  }
  if (has === 'voter' && input.conf.voters.length <= 1) {
    return { ok: false, status: 409, message: `${name} is the last database member` };
  }
  return {
    command: existing === undefined ? null : { type: 'member-remove', name },
    change: has === null ? null : { type: 'remove', node: name },
  };
}

export function isRefusal(plan: MembershipPlan | Refusal): plan is Refusal {
  return 'ok' in plan;
}

/** What the runner needs from the sidecar's controller (the leader). */
export interface MembershipHost {
  self: string;
  log: Logger;
  members(): MemberSpec[];
  primary(): string | null;
  conf(): ConfState | null;
  commit(command: ClusterCommand): Promise<void>;
  proposeConfChange(change: ConfChange): Promise<number>;
  /** On the primary: a replication slot for a (re-)added database member. */
  ensureSlot(name: string): Promise<void>;
  /** On the primary: drop a removed member's slot unless a walsender still uses it. */
  dropSlot(name: string): Promise<boolean>;
}

/** Runs one membership change at a time on the leader. */
export class MembershipRunner {
  private running = false;

  constructor(private readonly host: MembershipHost) {}

  async add(spec: MemberSpec): Promise<AdminResult> {
    return this.exclusive(async () => {
      const conf = this.host.conf();
      if (conf === null) return { ok: false, status: 503, message: 'raft is not running; retry' };
      const plan = planMemberAdd({ members: this.host.members(), conf, spec });
      if (isRefusal(plan)) return plan;
      // The slot first: a new member's base backup and a re-added one's walreceiver stream through it.
      if (spec.kind === 'member' && this.host.primary() === this.host.self)
        await this.host.ensureSlot(spec.name);
      if (plan.command !== null) await this.host.commit(plan.command);
      if (plan.change !== null) await this.host.proposeConfChange(plan.change);
      this.host.log.info('member added', { event: 'member-add', member: spec.name, kind: spec.kind });
      return {
        ok: true,
        message: `${spec.name} is a ${spec.kind === 'witness' ? 'witness' : 'database member'} now; start its sidecar if it is not running`,
        detail: { member: spec.name, kind: spec.kind },
      };
    });
  }

  async remove(name: string): Promise<AdminResult> {
    return this.exclusive(async () => {
      const conf = this.host.conf();
      if (conf === null) return { ok: false, status: 503, message: 'raft is not running; retry' };
      const plan = planMemberRemove({
        members: this.host.members(),
        conf,
        primary: this.host.primary(),
        self: this.host.self,
        name,
      });
      if (isRefusal(plan)) return plan;
      const kind = this.host.members().find((m) => m.name === name)?.kind ?? 'member';
      if (plan.change !== null) await this.host.proposeConfChange(plan.change);
      if (plan.command !== null) await this.host.commit(plan.command);
      let slot = 'no slot';
      if (kind === 'member' && this.host.primary() === this.host.self) {
        slot = (await this.host.dropSlot(name).catch(() => false))
          ? 'its replication slot dropped'
          : 'its replication slot is still in use: it is dropped no sooner than its PostgreSQL stops streaming';
      }
      this.host.log.info('member removed', { event: 'member-remove', member: name, kind, slot });
      return {
        ok: true,
        message: `${name} is no longer a member (${slot}); stop its sidecar`,
        detail: { member: name, kind },
      };
    });
  }

  private async exclusive(body: () => Promise<AdminResult>): Promise<AdminResult> {
    if (this.running)
      return { ok: false, status: 409, message: 'a membership change is already running; retry' };
    this.running = true;
    try {
      return await body();
    } catch (error) {
      if (error instanceof ProposalRejectedError) {
        const retry = ['confChangeInProgress', 'leaderNoopNotCommitted', 'busy', 'tooManyPending'];
        return {
          ok: false,
          status: retry.includes(error.reason) ? 503 : 409,
          message: `the membership change was refused by raft (${error.reason}); retry`,
        };
      }
      return {
        ok: false,
        status: 503,
        message: `the membership change did not complete: ${(error as Error).message}; check GET /cluster and retry`,
      };
    } finally {
      this.running = false;
    }
  }
}

/** Sends a membership request to the leader's admin API (followers forward what they cannot do). */
export async function forwardMembership(
  leaderApi: string | null,
  token: string | undefined,
  method: 'POST' | 'DELETE',
  route: string,
  body: unknown,
  timeoutMs: number,
): Promise<AdminResult> {
  if (leaderApi === null)
    return { ok: false, status: 503, message: 'no leader right now; retry in a second' };
  try {
    const response = await fetch(`${leaderApi}${route}`, {
      method,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token ?? ''}` },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const answer = (await response.json().catch(() => ({}))) as Record<string, unknown>;
    if (response.ok) return { ok: true, message: String(answer.message ?? 'done'), detail: answer };
    const status = [400, 404, 409, 503].includes(response.status) ? response.status : 503;
    return {
      ok: false,
      status: status as 400 | 404 | 409 | 503,
      message: String(answer.error ?? `leader answered ${response.status}`),
    };
  } catch (error) {
    return { ok: false, status: 503, message: `the leader did not answer: ${(error as Error).message}` };
  }
}

/**
 * Keeps the Raft transport's peers equal to the applied membership: a new member's
 * address is known before the conf change that adds it is proposed, and a removed
 * one's frames are refused once it left the Raft configuration. Returns the new map.
 */
export function peerUpdates(
  known: ReadonlyMap<string, { host: string; port: number }>,
  members: readonly MemberSpec[],
  conf: ConfState | null,
  self: string,
): { set: Array<[string, { host: string; port: number }]>; remove: string[] } {
  const set: Array<[string, { host: string; port: number }]> = [];
  for (const m of members) {
    if (m.name === self) continue;
    const old = known.get(m.name);
    if (old === undefined || old.host !== m.host || old.port !== m.raftPort) {
      set.push([m.name, { host: m.host, port: m.raftPort }]);
    }
  }
  const remove: string[] = [];
  if (conf !== null) {
    for (const name of known.keys()) {
      if (members.some((m) => m.name === name) || inConf(conf, name) !== null) continue;
      remove.push(name);
    }
  }
  return { set, remove };
}
