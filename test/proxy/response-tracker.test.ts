// Which backend message answers which frontend message (protocol-flow.html, "Extended
// Query": after an error PostgreSQL skips every message up to Sync).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLIENT_OWNER, type ResponseOwner, ResponseTracker } from '../../src/proxy/response-tracker.ts';

const c = (s: string) => s.charCodeAt(0);

function recorder(toClient: boolean): ResponseOwner & { seen: string[]; done: boolean[] } {
  const seen: string[] = [];
  const done: boolean[] = [];
  return {
    toClient,
    seen,
    done,
    onMessage: (type) => seen.push(String.fromCharCode(type)),
    onDone: (skipped) => done.push(skipped),
  };
}

function feed(tracker: ResponseTracker, answers: string): string {
  let routes = '';
  for (const a of answers) {
    routes += tracker.route(c(a)) === 'client' ? 'c' : 'p';
    tracker.answered(c(a), Buffer.alloc(0));
  }
  return routes;
}

test('a proxy-owned query between client batches is swallowed; async messages go to the client', () => {
  const tracker = new ResponseTracker();
  const proxy = recorder(false);
  tracker.sent(c('Q'), CLIENT_OWNER);
  tracker.sent(c('Q'), proxy);
  tracker.sent(c('Q'), CLIENT_OWNER);
  assert.equal(feed(tracker, 'TDCZ'), 'cccc');
  assert.equal(feed(tracker, 'TDAZ'), 'ppcp', 'a NotificationResponse always reaches the client');
  assert.deepEqual(proxy.seen, ['T', 'D', 'Z']);
  assert.deepEqual(proxy.done, [false]);
  assert.equal(feed(tracker, 'CZ'), 'cc');
  assert.equal(tracker.pending, 0);
});

test('after an error in an extended batch, the rest up to Sync is skipped (owners hear skipped)', () => {
  const tracker = new ResponseTracker();
  const parse = recorder(true);
  const injected = recorder(false);
  tracker.sent(c('P'), parse);
  tracker.sent(c('B'), CLIENT_OWNER);
  tracker.sent(c('E'), injected);
  tracker.sent(c('S'), CLIENT_OWNER);
  tracker.sent(c('Q'), CLIENT_OWNER);
  assert.equal(feed(tracker, 'E'), 'c');
  assert.deepEqual(parse.done, [false]);
  assert.deepEqual(injected.done, [true]);
  assert.equal(tracker.pending, 2);
  assert.equal(tracker.owedReadyForQuery(), 2);
  assert.equal(feed(tracker, 'Z'), 'c');
  assert.equal(feed(tracker, 'ECZ'), 'ccc', 'an error inside a simple Query ends at its ReadyForQuery');
  assert.equal(tracker.pending, 0);
});

test('synthesized answers come out in order, after the answers pending before them', () => {
  const tracker = new ResponseTracker();
  tracker.synthesize(Buffer.from('now'));
  assert.deepEqual(tracker.takeDue().map(String), ['now']);
  tracker.sent(c('Q'), CLIENT_OWNER);
  tracker.synthesize(Buffer.from('later'));
  assert.deepEqual(tracker.takeDue(), []);
  feed(tracker, 'C');
  assert.deepEqual(tracker.takeDue(), []);
  feed(tracker, 'Z');
  assert.deepEqual(tracker.takeDue().map(String), ['later']);
});

test('Describe ends at RowDescription or NoData, Execute at CommandComplete, EmptyQuery or PortalSuspended', () => {
  const tracker = new ResponseTracker();
  for (const type of 'DDEEE') tracker.sent(c(type), CLIENT_OWNER);
  feed(tracker, 'tT');
  assert.equal(tracker.pending, 4);
  feed(tracker, 'n');
  feed(tracker, 'DDC');
  feed(tracker, 'I');
  feed(tracker, 'Ds');
  assert.equal(tracker.pending, 0);
});

test('abandon tells every owner it was skipped and drops synthesized answers', () => {
  const tracker = new ResponseTracker();
  const owner = recorder(true);
  tracker.sent(c('Q'), owner);
  tracker.synthesize(Buffer.from('x'));
  tracker.abandon();
  assert.deepEqual(owner.done, [true]);
  assert.equal(tracker.pending, 0);
  assert.deepEqual(tracker.takeDue(), []);
});
