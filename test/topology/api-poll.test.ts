import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ClusterView } from '../../src/cluster/view.ts';
import { silentLogger } from '../../src/log.ts';
import { ApiPollTopology } from '../../src/topology/api-poll.ts';
import { FollowerTopology } from '../../src/topology/follower.ts';
import { fakeMember } from '../support/fake-member.ts';
import { waitFor } from '../support/wait.ts';

const view = (term: number, primary: string | null): ClusterView => ({
  term,
  primary,
  promotedAtLsn: null,
  members: [],
});

test('api-poll follows term changes through the long-poll and skips an unreachable member', async (t) => {
  const member = await fakeMember(view(1, 'a'));
  t.after(() => member.close());
  const follower = new FollowerTopology(view(0, null), silentLogger());
  // The first URL refuses connections (nothing listens on port 1): the poller moves on.
  const poller = new ApiPollTopology(
    follower,
    { memberUrls: ['http://127.0.0.1:1', member.url], retryDelayMs: 10 },
    silentLogger(),
  );
  t.after(() => poller.stop());
  await poller.start();
  await waitFor(() => follower.current().primary === 'a', { timeoutMs: 10_000, what: 'primary a' });

  const seen: ClusterView[] = [];
  follower.subscribe((v) => seen.push(v));
  member.set(view(2, null));
  await waitFor(() => follower.current().term === 2, { timeoutMs: 10_000, what: 'term 2' });
  member.set(view(2, 'b'));
  await waitFor(() => follower.current().primary === 'b', { timeoutMs: 10_000, what: 'primary b' });
  assert.deepEqual(
    seen.map((v) => [v.term, v.primary]),
    [
      [2, null],
      [2, 'b'],
    ],
  );
  assert.ok(
    member.requests.some((r) => r.includes('waitForTermAbove=1')),
    'long-polled on the known term',
  );
});

test('api-poll never lets a member with an older term move routing back', async (t) => {
  const member = await fakeMember(view(3, 'a'));
  t.after(() => member.close());
  const follower = new FollowerTopology(view(5, 'b'), silentLogger());
  const poller = new ApiPollTopology(
    follower,
    { memberUrls: [member.url], electionPollMs: 10 },
    silentLogger(),
  );
  t.after(() => poller.stop());
  await poller.start();
  await waitFor(() => member.requests.length >= 1, { timeoutMs: 10_000, what: 'a long-poll' });
  // An answer of an older term (a member that lags behind) arrives and is ignored.
  member.set(view(4, 'a'));
  await waitFor(() => member.requests.length >= 2, { timeoutMs: 10_000, what: 'the next poll' });
  assert.deepEqual([follower.current().term, follower.current().primary], [5, 'b']);
});

test('api-poll learns a failover from a live member while another holds its long-poll without answering', async (t) => {
  // `frozen` stands for a member whose machine froze or was cut off: its connection
  // stays open and its long-poll never answers. Before, the poller waited on one
  // member at a time and learned of the failover only at the long-poll timeout (~20 s).
  const frozen = await fakeMember(view(1, 'a'));
  const live = await fakeMember(view(1, 'a'));
  t.after(() => Promise.all([frozen.close(), live.close()]));
  const follower = new FollowerTopology(view(0, null), silentLogger());
  const poller = new ApiPollTopology(follower, { memberUrls: [frozen.url, live.url] }, silentLogger());
  t.after(() => poller.stop());
  await poller.start();
  await waitFor(() => follower.current().primary === 'a', { timeoutMs: 10_000, what: 'primary a' });
  await waitFor(
    () =>
      frozen.requests.some((r) => r.includes('waitForTermAbove=1')) &&
      live.requests.some((r) => r.includes('waitForTermAbove=1')),
    { timeoutMs: 10_000, what: 'a long-poll parked on each member' },
  );
  const changedAt = performance.now();
  live.set(view(2, 'b'));
  // Far below the 20 s long-poll that the frozen member holds.
  await waitFor(() => follower.current().primary === 'b', {
    timeoutMs: 5000,
    what: 'primary b from the live member',
  });
  assert.ok(performance.now() - changedAt < 5000);
  assert.equal(follower.current().term, 2);
});
