// Waiting for a whole cluster before a fault: on a loaded machine a cluster can
// fail over by itself (an event-loop stall voids the leader's lease) while a test
// waits for the backups, so the primary is re-read until one stays put.
import type { TestCluster } from '../support/cluster.ts';
import { waitForPrimary, waitForStreamingBackup } from '../support/failover.ts';

/**
 * Waits until a writable primary of term ≥ `minTerm` has every other node streaming
 * its timeline, and is still the primary afterwards: on a loaded machine the cluster
 * may fail over by itself meanwhile, and then the new primary is waited for instead.
 */
export async function settled(cluster: TestCluster, minTerm: number, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  const left = () => Math.max(1000, deadline - Date.now());
  for (;;) {
    const primary = await waitForPrimary(cluster, { aboveTerm: minTerm - 1, timeoutMs: left() });
    try {
      for (const node of cluster.nodes) {
        if (node.name !== primary.node.name)
          await waitForStreamingBackup(cluster, node, Math.min(60_000, left()));
      }
      const now = await waitForPrimary(cluster, { aboveTerm: minTerm - 1, timeoutMs: left() });
      if (now.node.name === primary.node.name && now.term === primary.term) return primary;
    } catch (error) {
      if (Date.now() >= deadline) throw error;
    }
  }
}
