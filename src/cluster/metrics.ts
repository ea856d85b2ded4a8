// Prometheus metrics of one sidecar: a registry per sidecar (not the global one),
// so several sidecars in one test process do not mix their figures.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { NodeRole } from './view.ts';

const ROLES: NodeRole[] = ['primary', 'backup', 'witness', 'down', 'unknown'];

export interface ProxyStats {
  clients: number;
  heldRequests: number;
}

export interface ClusterMetricsSource {
  term(): number;
  role(): NodeRole;
  lagBytes(): number | null;
  leaseValid(): boolean;
  durability(): 'quorum' | 'async' | 'blocked' | null;
  proxy(): ProxyStats | null;
}

export class ClusterMetrics {
  readonly registry = new Registry();
  readonly failovers: Counter<'kind'>;
  readonly elections: Counter;
  readonly promotions: Counter;
  readonly fences: Counter<'reason'>;
  readonly roleChanges: Counter<'role'>;
  readonly failoverDuration: Histogram<'kind'>;

  constructor(source: ClusterMetricsSource, labels: { cluster: string; node: string }) {
    this.registry.setDefaultLabels(labels);
    const registers = [this.registry];
    new Gauge({
      name: 'pgward_term',
      help: 'Raft term known to this sidecar (the fencing epoch)',
      registers,
      collect() {
        this.set(source.term());
      },
    });
    new Gauge({
      name: 'pgward_role',
      help: '1 for the role this node has now, 0 for the others',
      labelNames: ['role'],
      registers,
      collect() {
        const role = source.role();
        for (const r of ROLES) this.set({ role: r }, r === role ? 1 : 0);
      },
    });
    new Gauge({
      name: 'pgward_replication_lag_bytes',
      help: 'Replay lag of this backup behind its primary (absent when unknown)',
      registers,
      collect() {
        const lag = source.lagBytes();
        if (lag === null) this.reset();
        else this.set(lag);
      },
    });
    new Gauge({
      name: 'pgward_lease_valid',
      help: '1 while this node holds the write lease',
      registers,
      collect() {
        this.set(source.leaseValid() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'pgward_durability',
      help: '1 for the synchronous-commit mode the primary runs: quorum, async (degraded) or blocked',
      labelNames: ['mode'],
      registers,
      collect() {
        const mode = source.durability();
        for (const m of ['quorum', 'async', 'blocked']) this.set({ mode: m }, m === mode ? 1 : 0);
      },
    });
    new Gauge({
      name: 'pgward_proxy_clients',
      help: 'Client connections on this sidecar proxy',
      registers,
      collect() {
        this.set(source.proxy()?.clients ?? 0);
      },
    });
    new Gauge({
      name: 'pgward_held_requests',
      help: 'Requests the proxy holds while there is no writable primary',
      registers,
      collect() {
        this.set(source.proxy()?.heldRequests ?? 0);
      },
    });
    this.failovers = new Counter({
      name: 'pgward_failovers_total',
      help: 'Primary changes seen by this sidecar (kind: failover or switchover)',
      labelNames: ['kind'],
      registers,
    });
    this.elections = new Counter({
      name: 'pgward_elections_total',
      help: 'Terms this sidecar entered',
      registers,
    });
    this.promotions = new Counter({
      name: 'pgward_promotions_total',
      help: 'Promotions this sidecar performed on its PostgreSQL',
      registers,
    });
    this.fences = new Counter({
      name: 'pgward_fences_total',
      help: 'Fencing actions: stop-following, self-fence (PostgreSQL stopped), demote',
      labelNames: ['reason'],
      registers,
    });
    this.roleChanges = new Counter({
      name: 'pgward_role_changes_total',
      help: 'Role changes of this node, by the role it took',
      labelNames: ['role'],
      registers,
    });
    this.failoverDuration = new Histogram({
      name: 'pgward_failover_duration_seconds',
      help: 'From losing the primary (leader change or step-down) to the new promotion applied',
      labelNames: ['kind'],
      buckets: [0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30],
      registers,
    });
  }
}
