// Isolating the primary's network needs network namespaces: every node of a
// `pgward up` cluster shares 127.0.0.1, where iptables cannot tell one node's
// Raft traffic from another's. The fault-proxy partition tests in
// test/cluster/ cover this case; against a local cluster the drill says so.
import { UserError } from '../../errors.ts';
import type { Scenario } from './types.ts';

export const partitionPrimaryScenario: Scenario = {
  name: 'partition-primary',
  description: "isolate the primary's node from the others (network namespaces only)",
  async run() {
    throw new UserError(
      'partition-primary cannot run against a local cluster: its nodes share 127.0.0.1, so no firewall rule can cut one off',
      'run the partition tests (test/cluster/*partition*) which route Raft and replication through a fault proxy, or deploy the nodes in separate network namespaces',
    );
  },
};
